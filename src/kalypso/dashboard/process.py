"""The dashboard as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

from pathlib import Path

from kalypso.process import DaemonProcess


class DashboardProcess(DaemonProcess):
    """`kalypso dashboard` in its own process; a context manager that stops it on exit."""

    def __init__(
        self,
        workdir: Path,
        *,
        rpc_url: str,
        deployment: Path,
        port: int,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(
            "dashboard",
            [
                "dashboard",
                "--rpc-url",
                rpc_url,
                "--deployment",
                str(deployment),
                "--state",
                str(workdir / "dashboard.sqlite"),
                "--port",
                str(port),
                "--poll-interval",
                str(poll_interval),
            ],
            workdir=workdir,
            account=None,
            key_env=None,
            api_port=port,
        )
