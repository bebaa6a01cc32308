"""`make rehearsal`: a testnet deployment rehearsed from keys to shutdown, the way
docs/real-chains.md tells an operator, on a chain that behaves like a hosted provider.

A fresh anvil (chain 4242, a block a second, thousands of blocks of history after the
deployment) behind the provider simulator's `hosted` profile. No development key signs
for Kalypso: anvil's first account only plays the chain's faucet and sends gas money.
Every Kalypso step is the real command in a child process: `kalypso keystore new`,
`deploy`, `market create` (with the square-root input verifier deployed "with any
tool", as docs/market-creator.md says), `admin set-matching-engine`, `token mint`,
`init` for the matcher and two generators, `generator fetch`, the daemons. One app
requests proofs through the SDK while another, with a key of its own, does through
`kalypso request create|status|wait`.

One generator ("doomed") offers a short proof time nobody else does and has a prover
that never answers; it takes the first request and is killed (SIGKILL) with it. The
matcher must slash it after the deadline. The other requests ask for a price only the
healthy generator offers, so none is left behind with the dead one. Everything stops
with SIGTERM and must exit 0. The last lines: the counts, each daemon's RPC calls,
retries and range refusals, and `rehearsal verdict: pass` (or `fail: <reasons>`).

    python -m kalypso.testing.rehearsal [--short] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from kalypso.contracts.web3tx import bind, deploy, send
from kalypso.deployment import Deployment
from kalypso.devnet import Anvil, dev_account, free_port
from kalypso.keys import load_account
from kalypso.market import RequestState
from kalypso.process import DaemonProcess
from kalypso.sdk import Kalypso
from kalypso.testing.provider import ProviderSimulator
from kalypso.testing.rehearsal_plan import FULL, SHORT, Plan, Report, run_cli

CHAIN_ID = 4242
#: keystores: the operator's, the daemons' and two apps' (one uses the SDK, one the CLI)
NAMES = ("deployer", "matcher", "generator-a", "generator-b", "app", "app-cli")
HANGING_PROVER = [sys.executable, "-c", "import time; time.sleep(3600)"]


class Rehearsal:
    def __init__(self, work: Path, plan: Plan, say: Callable[[str], None] = print) -> None:
        self.work, self.plan, self._say = work, plan, say
        self.began = time.monotonic()
        self.report = Report()
        self.password = work / "password.txt"
        self.deployment = work / "deployment.json"
        self.addresses: dict[str, str] = {}
        self.daemons: dict[str, DaemonProcess] = {}
        self.market = ""
        self.chain: Anvil
        self.sim: ProviderSimulator

    def say(self, line: str) -> None:
        self._say(f"[{time.monotonic() - self.began:5.1f} s] {line}")

    # ---- the commands an operator and an app run

    def env(self, label: str, **extra: str) -> dict[str, str]:
        """A clean environment: this rehearsal's home, the simulator under `label`, the
        keystore password in a file; nothing from the caller's KALYPSO_* variables."""
        return {
            "HOME": str(self.work / "home"),
            "KALYPSO_RPC_URL": self.sim.url_for(label),
            "KALYPSO_KEYSTORE_PASSWORD_FILE": str(self.password),
            **({"KALYPSO_DEPLOYMENT": str(self.deployment)} if self.deployment.exists() else {}),
            **extra,
        }

    def kalypso(self, label: str, *args: str, keystore: str | None = None) -> str:
        return self.together([(label, list(args), keystore)])[0]

    def together(self, jobs: list[tuple[str, list[str], str | None]]) -> list[str]:
        """Commands of different keys at once: (client label, args, keystore name)."""
        runs = [
            (args, self.env(label, **({"KALYPSO_KEYSTORE": str(self.key(k))} if k else {})))
            for label, args, k in jobs
        ]
        return run_cli(self.report, runs, self.work / "commands.log")

    def key(self, name: str) -> Path:
        return self.work / "keys" / f"{name}.json"

    @property
    def secret(self) -> str:
        """The keystores' password (the first line of its file, as the commands read it)."""
        return self.password.read_text().strip()

    def account(self, name: str) -> LocalAccount:
        return load_account(None, self.key(name), password=self.secret)

    def keys(self) -> None:
        self.password.write_text(secrets.token_hex(16) + "\n")
        (self.work / "keys").mkdir()
        by_cli = NAMES if self.plan.every_command else ("matcher",)
        with ThreadPoolExecutor(1) as pool:
            made = pool.submit(self.together, [
                ("operator", ["keystore", "new", "--out", str(self.key(name))], None)
                for name in by_cli
            ])  # fmt: skip
            for name in set(NAMES) - set(by_cli):  # the short version: V3 files by library,
                # with a light scrypt: each command that opens one saves a second of CPU
                key = Account.create().key
                encrypted = Account.encrypt(key, self.secret, iterations=2**12)
                self.key(name).write_text(json.dumps(encrypted))
            made.result()
        for name in NAMES:
            keystore = json.loads(self.key(name).read_text())
            self.addresses[name] = Web3.to_checksum_address(keystore["address"])
        faucet = self.chain.web3()
        for address in self.addresses.values():  # gas from the chain's faucet
            faucet.eth.send_transaction(
                {"from": dev_account(0).address, "to": address, "value": Web3.to_wei(10, "ether")}
            )
        self.say(f"keys: {len(NAMES)} keystores, funded with gas by the chain's faucet")

    def deploy(self) -> None:
        authority = Account.create().address  # no enclaves in this rehearsal
        self.kalypso(
            "operator", "deploy", "--keystore", str(self.key("deployer")),
            "--attestation-authority", authority, "--out", str(self.deployment),
        )  # fmt: skip
        self.chain.web3().provider.make_request(
            RPCEndpoint("anvil_mine"), [hex(self.plan.history), "0x1"]
        )
        deployer = self.account("deployer")
        w3 = Web3(Web3.HTTPProvider(self.sim.url_for("operator")))
        verifier, _ = deploy(w3, deployer, "SquareRootInputVerifier")
        created = self.kalypso(
            "operator", "market", "create", "square_root", "--circuit", "square_root",
            "--input-verifier", verifier.address, "--keystore", str(self.key("deployer")),
        )  # fmt: skip
        self.market = re.search(r"market id +(\d+)", created)[1]  # type: ignore[index]
        self.say(
            f"deployed on chain {CHAIN_ID} with {self.plan.history} blocks of history; "
            f"market {self.market} created"
        )

    def authorize_and_fund(self) -> None:
        """The deployer's remaining transactions, one after another (one key): tokens for
        the generators and apps, the matcher authorized. The short version mints to the
        app only, which passes tokens on (by library) while the matcher is authorized."""
        funded = (
            {name: "5000" for name in NAMES[2:]} if self.plan.every_command else {"app": "20000"}
        )
        for name, amount in funded.items():
            self.kalypso("operator", "token", "mint", self.addresses[name], amount,
                         keystore="deployer")  # fmt: skip
        with ThreadPoolExecutor(1) as pool:
            authorized = pool.submit(
                self.kalypso, "operator", "admin", "set-matching-engine",
                self.addresses["matcher"], "--yes", keystore="deployer",
            )  # fmt: skip
            if not self.plan.every_command:
                app = self.account("app")
                w3 = Web3(Web3.HTTPProvider(self.sim.url_for("app")))
                token = bind(w3, "Token", Deployment.load(self.deployment).token)
                for name in ("generator-a", "generator-b", "app-cli"):
                    send(w3, app, token.functions.transfer(self.addresses[name], 5000 * 10**18))
            authorized.result()

    def configs(self) -> None:
        """The daemons' files, while the deployer authorizes the matcher and mints."""
        with ThreadPoolExecutor(1) as pool:
            funding = pool.submit(self.authorize_and_fund)
            self._write_configs()
            funding.result()
        self.say("the matcher authorized, tokens minted; configs written, artifacts fetched")

    def _write_configs(self) -> None:
        roles = {"matcher": "matcher", "generator-a": "generator", "generator-b": "generator"}
        *_, listed = self.together([
            *((name, ["init", role, "--dir", str(self.work / name), "--market", self.market,
                      "--rpc-url", self.sim.url_for(name)], None)
              for name, role in roles.items()),
            ("app", ["market", "list", "--json"], None),  # an app pages through the history
        ])  # fmt: skip
        if str(json.loads(listed)[-1]["id"]) != self.market:
            self.report.fail(f"market list did not end with market {self.market}: {listed}")
        for name, role in roles.items():
            folder = self.work / name
            shutil.copy(self.key(name), folder / f"{role}-keystore.json")
            config = folder / f"{role}.toml"
            text = re.sub(r"(?m)^api_port = \d+", f"api_port = {free_port()}", config.read_text())
            if name == "generator-a":
                text = _offer(text, price=5, proof_time=60, compute=4)
            elif name == "generator-b":
                offer = self.plan.doomed_proof_time - 2
                text = _offer(text, price=8, proof_time=offer, compute=1)
                text = text.split(f"[markets.{self.market}]")[0] + (
                    f"[markets.{self.market}]\nprice = {8 * 10**18}\nproof_time = {offer}\n"
                    f'prover = "command"\ncommand = {json.dumps(HANGING_PROVER)}\n'
                )
            config.write_text(text)
        self.kalypso("generator-a", "generator", "fetch", self.market,
                     "-c", str(self.work / "generator-a/generator.toml"))  # fmt: skip

    def start(self) -> None:
        """The three daemons at once, each timed from its start to a healthy API."""
        for name, args, env in (
            ("matcher", ["matcher", "-c"], "KALYPSO_MATCHER_PASSWORD_FILE"),
            ("generator-a", ["generator", "run", "-c"], "KALYPSO_GENERATOR_PASSWORD_FILE"),
            ("generator-b", ["generator", "run", "-c"], "KALYPSO_GENERATOR_PASSWORD_FILE"),
        ):
            folder = self.work / name
            config = next(folder.glob("*.toml"))
            port = int(re.search(r"(?m)^api_port = (\d+)", config.read_text())[1])  # type: ignore[index]
            self.daemons[name] = DaemonProcess(
                name, [*args, str(config)], workdir=folder, account=None, key_env=None,
                api_port=port, env=self.env(name, **{env: str(self.password)}),
            )  # fmt: skip

        def start(name: str) -> None:
            started = time.monotonic()
            self.daemons[name].start(timeout=180)
            self.report.startup[name] = round(time.monotonic() - started, 1)

        with ThreadPoolExecutor(len(self.daemons)) as pool:
            list(pool.map(start, self.daemons))
        self.say(f"daemons ready in {self.report.startup} s")

    def requests(self) -> None:
        """The doomed request first; then the SDK app's requests while the CLI app places
        its own (two keys, so at once), checks their status and waits for them."""
        app = Kalypso(self.sim.url_for("app"), self.deployment,
                      keystore=self.key("app"),
                      password=self.secret)  # fmt: skip
        try:
            doomed = app.request_proof(self.market, {"square": 4, "max_root": 100},
                                       max_price="10 KAL",
                                       proof_time=self.plan.doomed_proof_time)  # fmt: skip
            with ThreadPoolExecutor(2) as pool:
                killed = pool.submit(self._kill_when_assigned, doomed.id)
                by_cli = pool.submit(self._cli_requests)
                placed = []
                for i in range(self.plan.requests - self.plan.cli_requests):
                    inputs = {"square": (i + 10) ** 2, "max_root": 100}
                    placed.append(app.request_proof(self.market, inputs, max_price="6 KAL",
                                                    proof_time=120))  # fmt: skip
                self.say(f"requests: {len(placed)} placed through the SDK")
                placed.extend(app.request(r) for r in by_cli.result())
                killed.result()
            states: list[RequestState] = []
            ended = RequestState.ASSIGNED
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                states = [request.status().state for request in placed]
                ended = doomed.status().state
                if ended.is_final and all(state.is_final for state in states):
                    break
                time.sleep(1)
            self.say(
                f"requests ended: {[s.name.lower() for s in states]}, doomed {ended.name.lower()}"
            )
            self.report.fulfilled = states.count(RequestState.FULFILLED)
            self.report.slashed = int(ended == RequestState.SLASHED)
            self.report.stuck = len(placed) - self.report.fulfilled + (1 - self.report.slashed)
            self.report.expected = len(placed)
        finally:
            app.close()

    def _cli_requests(self) -> list[bytes]:
        """`kalypso request create`, then `status` and `wait` side by side: the ids."""
        placed = []
        for i in range(self.plan.cli_requests):
            out = self.kalypso("app-cli", "request", "create", self.market, "-i",
                               f"square={(i + 50) ** 2}", "-i", "max_root=100",
                               "--max-price", "6 KAL", "--proof-time", "120", "--json",
                               keystore="app-cli")  # fmt: skip
            placed.append(bytes.fromhex(json.loads(out)["request_id"][2:]))
        self.say(f"requests: {len(placed)} placed through the CLI")
        self.together([
            *(("app-cli", ["request", "status", "0x" + r.hex(), "--json"], None)
              for r in placed),
            *(("app-cli", ["request", "wait", "0x" + r.hex(), "--timeout", "300", "--json"],
               "app-cli") for r in placed),
        ])  # fmt: skip
        self.say("requests: the CLI's fulfilled")
        return placed

    def _kill_when_assigned(self, request_id: bytes) -> None:
        """Watch (with a client of its own) for the doomed request's assignment; kill."""
        watcher = Kalypso(self.sim.url_for("app"), self.deployment)
        try:
            doomed = watcher.request(request_id)
            deadline = time.monotonic() + 120
            while (status := doomed.status()).generator is None:
                if time.monotonic() > deadline or status.state.is_final:
                    self.report.fail(
                        f"the doomed request was not seen assigned: {status.state.name}"
                    )
                    return
                time.sleep(0.5)
        finally:
            watcher.close()
        if status.generator != self.addresses["generator-b"]:
            self.report.fail(f"the doomed request went to {status.generator}, not generator-b")
        self.daemons["generator-b"].kill()
        self.say("generator-b killed (SIGKILL) with its task; the matcher must slash it")

    def stop(self) -> None:
        """SIGTERM to every daemon still running: each drains and must exit 0."""
        for name, daemon in self.daemons.items():
            if daemon.process is None or daemon.process.poll() is not None:
                continue  # the killed one
            daemon.stop(timeout=120)
            code = daemon.process.returncode if daemon.process else None
            if code != 0:
                self.report.fail(f"{name} exited with {code} on SIGTERM: {daemon.tail(3)}")
        for name, daemon in self.daemons.items():
            if "Traceback" in daemon.log.read_text():
                self.report.fail(f"{name} printed a traceback (see {daemon.log})")

    def _trace(self, reason: str) -> None:
        """A reverted transaction named in `reason`: its call trace, in the work folder."""
        if not (found := re.search(r"tx (0x[0-9a-f]{64})", reason)):
            return
        trace = self.chain.web3().provider.make_request(
            RPCEndpoint("debug_traceTransaction"), [found[1], {"tracer": "callTracer"}]
        )
        (self.work / "reverted-trace.json").write_text(json.dumps(trace, indent=1))

    def run(self) -> Report:
        config = self.plan.simulator
        with (
            Anvil(chain_id=CHAIN_ID, block_time=1, log=self.work / "anvil.log") as self.chain,
            ProviderSimulator(self.chain.url, config) as self.sim,
        ):
            try:
                for step in (self.keys, self.deploy, self.configs, self.start, self.requests):
                    began = time.monotonic()
                    step()
                    self.report.steps[step.__name__] = round(time.monotonic() - began, 1)
                    if self.report.reasons:
                        break
            except Exception as exc:  # the verdict names it; the report still prints
                self.report.fail(f"{type(exc).__name__}: {exc}")
                self._trace(str(exc))
            finally:
                self.stop()
                self.report.rpc = self.sim.stats.snapshot()["labels"]
        return self.report


def _offer(text: str, *, price: int, proof_time: int, compute: int) -> str:
    """The placeholders `kalypso init` leaves, set as an operator edits them."""
    text = re.sub(r"(?m)^price = \d+", f"price = {price * 10**18}", text)
    text = re.sub(r"(?m)^proof_time = \d+", f"proof_time = {proof_time}", text)
    return re.sub(r"(?m)^compute = \d+", f"compute = {compute}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the ≤ 90 s version (make test)")
    parser.add_argument("--keep", type=Path, help="keep the keys, configs and logs here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kalypso-rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Rehearsal(work, SHORT if args.short else FULL).run()
    print(report.render())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if not report.reasons else 1)


if __name__ == "__main__":
    main()
