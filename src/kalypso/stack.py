"""The devnet's daemons as one unit: the four enclave images, the matching engine, a
generator node in every market and the dashboard, each its own process. `kalypso devnet`,
the demo and the SDK's integration tests start the same stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from kalypso.dashboard.process import DashboardProcess
from kalypso.devnet import DevnetSetup, dev_account, free_port
from kalypso.enclave.process import EnclaveProcess, devnet_enclaves
from kalypso.generator.process import GeneratorProcess, devnet_generator
from kalypso.matching.process import MatcherProcess
from kalypso.process import DaemonProcess

#: what to show while a daemon starts (a spinner), given its name
Status = Callable[[str], AbstractContextManager[object]]


@dataclass
class DevnetStack:
    enclaves: dict[str, EnclaveProcess]
    matcher: MatcherProcess
    generator: GeneratorProcess
    dashboard: DashboardProcess

    @classmethod
    def build(
        cls,
        workdir: Path,
        rpc_url: str,
        deployment: Path,
        setup: DevnetSetup,
        *,
        matcher_port: int | None = None,
        generator_port: int | None = None,
        dashboard_port: int | None = None,
        slash_overdue: bool = True,
    ) -> DevnetStack:
        """The daemons (not started) for the deployment file `deployment` of `setup`
        (`slash_overdue=False`: the matcher leaves missed deadlines to the requesters)."""
        enclaves = devnet_enclaves(workdir, rpc_url, deployment, setup.deployment.markets)
        matcher = MatcherProcess(
            workdir,
            rpc_url=rpc_url,
            deployment=deployment,
            account=setup.matcher,
            api_port=matcher_port or free_port(),
            enclave_url=enclaves["matcher"].url,
            slash_overdue=slash_overdue,
        )
        generator = devnet_generator(
            workdir,
            rpc_url,
            deployment,
            {name: process.url for name, process in enclaves.items()},
            account=dev_account(2),
            api_port=generator_port or free_port(),
        )
        dashboard = DashboardProcess(
            workdir, rpc_url=rpc_url, deployment=deployment, port=dashboard_port or free_port()
        )
        return cls(enclaves, matcher, generator, dashboard)

    @property
    def daemons(self) -> list[DaemonProcess]:
        """In start order: the enclaves register first, the matcher needs its enclave."""
        return [*self.enclaves.values(), self.matcher, self.generator, self.dashboard]

    def start(self, status: Status | None = None) -> DevnetStack:
        """Start every daemon in order; on a failure stop those already started."""
        try:
            for daemon in self.daemons:
                with status(daemon.name) if status else nullcontext():
                    daemon.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM to every daemon at once (each drains on its own: the generator needs
        only the chain to leave its markets), then wait for each."""
        for daemon in reversed(self.daemons):
            if daemon.process is not None and daemon.process.poll() is None:
                daemon.process.terminate()
        for daemon in reversed(self.daemons):
            daemon.stop()

    def exited(self) -> Iterator[DaemonProcess]:
        """The daemons whose process has ended."""
        for daemon in self.daemons:
            if daemon.process is not None and daemon.process.poll() is not None:
                yield daemon
