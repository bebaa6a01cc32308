"""The matcher as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

from pathlib import Path

from eth_account.signers.local import LocalAccount

from kalypso.process import DaemonProcess


class MatcherProcess(DaemonProcess):
    """`kalypso matcher` in its own process; a context manager that stops it on exit."""

    account: LocalAccount  # always keyed

    def __init__(
        self,
        workdir: Path,
        *,
        rpc_url: str,
        deployment: Path,
        account: LocalAccount,
        api_port: int,
        poll_interval: float = 0.2,
        encryption_key: Path | None = None,
        enclave_url: str | None = None,
        slash_overdue: bool = True,
    ) -> None:
        self.config = workdir / "matcher.toml"
        self.config.write_text(
            f'rpc_url = "{rpc_url}"\n'
            f'deployment = "{deployment}"\n'
            f'state = "{workdir / "matcher.sqlite"}"\n'
            f"poll_interval = {poll_interval}\n"
            f"api_port = {api_port}\n"
            f"slash_overdue = {str(slash_overdue).lower()}\n"
            + (f'encryption_key = "{encryption_key}"\n' if encryption_key else "")
            + (f'enclave_url = "{enclave_url}"\n' if enclave_url else "")
        )
        super().__init__(
            "matcher",
            ["matcher", "--config", str(self.config)],
            workdir=workdir,
            account=account,
            key_env="KALYPSO_MATCHER_KEY",
            api_port=api_port,
        )
