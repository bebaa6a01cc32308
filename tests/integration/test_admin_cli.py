"""`kalypso admin …`, `kalypso token …` and `kalypso keystore …` against one anvil.

Most commands run in-process (typer's runner: a `kalypso` process takes ~3 s to import
here); the ones about the process itself (stdin closed, exit codes, the one-line error)
run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner
from web3 import Web3
from web3.types import RPCEndpoint

from kalypso.chain.actions import ActionLog, action_key
from kalypso.cli import app
from kalypso.contracts.admin import AdminClient
from kalypso.contracts.admin_state import AdminState, read_state
from kalypso.contracts.web3tx import deploy
from kalypso.devnet import Anvil, DevnetSetup, deploy_devnet, dev_account
from kalypso.enclave import DEV_AUTHORITY
from kalypso.errors import KalypsoError
from kalypso.keys import load_account

KALYPSO = [sys.executable, "-m", "kalypso.cli"]
OWNER, MATCHER, ALICE, BOB = dev_account(0), dev_account(1), dev_account(6), dev_account(7)
KAL = 10**18
IMAGE = "0x" + "11" * 32
runner = CliRunner()


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass
class Chain:
    anvil: Anvil
    setup: DevnetSetup
    deployment: Path
    home: Path

    def env(self, account: LocalAccount | None = OWNER, **more: str) -> dict[str, str | None]:
        """The command's environment; variables a developer's shell may hold are unset."""
        key = "0x" + account.key.hex().removeprefix("0x") if account else None
        return {
            "KALYPSO_RPC_URL": self.anvil.url,
            "KALYPSO_DEPLOYMENT": str(self.deployment),
            "KALYPSO_PRIVATE_KEY": key,
            "KALYPSO_KEYSTORE": None,
            "KALYPSO_KEYSTORE_PASSWORD": None,
            "KALYPSO_KEYSTORE_PASSWORD_FILE": None,
            "HOME": str(self.home),
            "COLUMNS": "250",
            **more,
        }

    def client(self, account: LocalAccount | None = None) -> AdminClient:
        return AdminClient.connect(self.anvil.url, self.deployment, account)

    def state(self) -> AdminState:
        return read_state(self.client())

    def rpc(self, method: str, *params: object) -> object:
        return self.anvil.web3().provider.make_request(RPCEndpoint(method), list(params))["result"]


@pytest.fixture(scope="module")
def module_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    path = tmp_path_factory.mktemp("admin") / "deployment.json"
    with Anvil() as anvil:
        setup = deploy_devnet(anvil.web3())
        setup.deployment.save(path)
        yield Chain(anvil, setup, path, path.parent)


@pytest.fixture
def chain(module_chain: Chain, tmp_path: Path) -> Iterator[Chain]:
    """The module's chain, reverted after the test; a fresh HOME (its action logs)."""
    snap = module_chain.rpc("evm_snapshot")
    yield replace(module_chain, home=tmp_path)
    module_chain.rpc("evm_revert", snap)


def kalypso(env: dict[str, str | None], *args: object) -> Ran:
    """In-process; a Kalypso error comes back as `kalypso`'s main prints it."""
    done = runner.invoke(app, [str(a) for a in args], env=env)
    if isinstance(done.exception, KalypsoError):
        return Ran(1, done.stdout, done.stderr + f"error: {done.exception}\n")
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Ran(done.exit_code, done.stdout, done.stderr)


def process(env: dict[str, str | None], *args: object) -> Ran:
    """A real `kalypso` process with stdin closed (no terminal, nothing to read)."""
    full = {k: v for k, v in (os.environ | env).items() if v is not None}
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *KALYPSO, *map(str, args)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def ok(ran: Ran) -> Ran:
    assert ran.code == 0, ran.out + ran.err
    return ran


def failed(ran: Ran, *words: str) -> str:
    """The one error line of a failed command."""
    assert ran.code == 1 and "Traceback" not in ran.err, ran.out + ran.err
    line = ran.err.strip().splitlines()[-1]
    assert line.startswith("error: ["), ran.err
    for word in words:
        assert word in line, line
    return line


def keystore(tmp: Path, account: LocalAccount, password: str) -> tuple[Path, Path]:
    """A keystore of `account` (cheap KDF: tests only) and a file holding its password."""
    path, secret = tmp / "key.json", tmp / "password.txt"
    path.write_text(json.dumps(Account.encrypt(account.key, password, kdf="pbkdf2", iterations=2)))
    secret.write_text(password + "\n")
    return path, secret


def test_show_prints_owners_settings_engines_and_authority(chain: Chain) -> None:
    text = ok(kalypso(chain.env(None), "admin", "show")).out
    for word in (OWNER.address, MATCHER.address, DEV_AUTHORITY, "pending authority      none"):
        assert word in text, text
    assert "market creation fee    0 KAL" in text
    shown = json.loads(ok(kalypso(chain.env(None), "admin", "show", "--json")).out)
    assert [o["owner"] for o in shown["ownership"]] == [OWNER.address] * 4
    assert shown["matching_engines"] == [MATCHER.address]
    assert shown["treasury"] == OWNER.address and shown["pending_since"] == 0


def test_owner_settings_end_to_end(chain: Chain) -> None:
    env = chain.env()
    done = ok(kalypso(env, "admin", "set-treasury", ALICE.address, "--yes"))
    assert "set_treasury: sent 0x" in done.out
    # what is signed is shown first: chain, contract, function and arguments
    assert "chain 31337: ProofMarketplace " + chain.setup.deployment.marketplace in done.err
    assert f"set_treasury(treasury={ALICE.address})" in done.err
    ok(kalypso(env, "admin", "set-market-creation-fee", "2.5 KAL", "--yes"))
    ok(kalypso(env, "admin", "set-matching-engine", BOB.address, "--yes"))
    ok(kalypso(env, "admin", "set-matching-engine", MATCHER.address, "--disallow", "--yes"))
    ok(kalypso(env, "admin", "set-market-matching-engine", 2, MATCHER.address, "--yes"))
    state = chain.state()
    assert state.treasury == ALICE.address and state.market_creation_fee == 25 * KAL // 10
    assert state.matching_engines == [BOB.address]
    assert state.market_matching_engines == {2: [MATCHER.address]}
    assert f"engines of market 2    {MATCHER.address}" in kalypso(env, "admin", "show").out
    failed(kalypso(chain.env(ALICE), "admin", "set-treasury", BOB.address, "-y"),
           "[K-CON-001]", "ownable: caller is not the owner")  # fmt: skip
    failed(kalypso(env, "admin", "set-treasury", "0x1234", "-y"), "not an address")


def test_the_set_once_wiring_of_a_fresh_marketplace(chain: Chain) -> None:
    """What `kalypso deploy` wires, by hand, on a registry and marketplace not yet wired."""
    w3, d = chain.anvil.web3(), chain.setup.deployment
    registry, _ = deploy(w3, OWNER, "GeneratorRegistry", d.token)
    market, _ = deploy(w3, OWNER, "ProofMarketplace", d.token, registry.address, OWNER.address, 0)
    fresh = chain.home / "fresh.json"
    replace(d, registry=registry.address, marketplace=market.address).save(fresh)
    env = chain.env(KALYPSO_DEPLOYMENT=str(fresh))
    ok(kalypso(env, "admin", "set-marketplace", market.address, "-y"))
    ok(kalypso(env, "admin", "set-market-registry", d.market_registry, "-y"))
    ok(kalypso(env, "admin", "set-enclave-registry", d.enclave_registry, "-y"))
    state = read_state(AdminClient.connect(chain.anvil.url, fresh), engines=False)
    assert state.registry_marketplace == market.address
    assert (state.market_registry, state.enclave_registry) == (
        d.market_registry,
        d.enclave_registry,
    )
    failed(kalypso(env, "admin", "set-enclave-registry", d.enclave_registry, "-y"),
           "[K-CON-003]", "config: enclave registry already set")  # fmt: skip


def test_an_attestation_authority_is_proposed_cancelled_applied_and_removed(chain: Chain) -> None:
    env = chain.env()
    ok(kalypso(env, "admin", "propose-authority", ALICE.address, "-y"))
    shown = kalypso(env, "admin", "show").out
    assert f"pending authority      {ALICE.address}" in shown and "(in 2 d 0 h)" in shown
    failed(kalypso(env, "admin", "apply-authority", "-y"), "enclaves: timelock not passed")
    ok(kalypso(env, "admin", "cancel-authority", "-y"))
    assert chain.state().pending_since == 0
    ok(kalypso(env, "admin", "propose-authority", BOB.address, "--matching-engine-image", IMAGE,
               "-y"))  # fmt: skip
    chain.rpc("evm_increaseTime", chain.state().authority_delay)
    chain.rpc("evm_mine")
    ok(kalypso(env, "admin", "apply-authority", "-y"))
    state = chain.state()
    assert state.authorities == [DEV_AUTHORITY, BOB.address]  # added beside the old one
    assert state.matching_engine_image == bytes.fromhex(IMAGE[2:])
    assert state.pending_since == 0
    # cut off at once, no timelock; a removed authority is never added back
    ok(kalypso(env, "admin", "remove-authority", DEV_AUTHORITY, "-y"))
    assert chain.state().authorities == [BOB.address]
    assert f"attestation authorities {BOB.address}" in kalypso(env, "admin", "show").out
    failed(kalypso(env, "admin", "propose-authority", DEV_AUTHORITY, "-y"),
           "enclaves: authority removed")  # fmt: skip
    failed(kalypso(env, "admin", "remove-authority", ALICE.address, "-y"),
           "enclaves: not an authority")  # fmt: skip


@pytest.mark.parametrize("contract", ["marketplace", "registry", "enclaves"])
def test_two_step_ownership(chain: Chain, contract: str) -> None:
    ok(kalypso(chain.env(), "admin", "transfer-ownership", contract, ALICE.address, "-y"))
    [owned] = [
        o
        for o in chain.state().ownership
        if o.address == chain.client().contracts[contract].address
    ]
    assert (owned.owner, owned.pending_owner) == (OWNER.address, ALICE.address)
    failed(kalypso(chain.env(BOB), "admin", "accept-ownership", contract, "-y"),
           "ownable_2step: caller is not the new owner")  # fmt: skip
    ok(kalypso(chain.env(ALICE), "admin", "accept-ownership", contract, "-y"))
    [owned] = [o for o in chain.state().ownership if o.address == owned.address]
    assert (owned.owner, int(owned.pending_owner or "0x0", 16)) == (ALICE.address, 0)


def test_a_market_creator_revokes_one_of_its_images(chain: Chain) -> None:
    markets = chain.setup.deployment.markets
    private, plonk = markets["poseidon_preimage"], markets["square_root_plonk"]
    done = ok(kalypso(chain.env(), "admin", "revoke-image", private, "generator", "-y"))
    assert "revoke_image(market_id=1, image_id=0x" in done.err
    enclaves = chain.client().contracts["enclaves"].functions
    image = chain.client().contracts["markets"].functions.market(private).call()[4]
    assert enclaves.revoked_at(private, image).call() > 0
    failed(kalypso(chain.env(), "admin", "revoke-image", private, "generator", "-y"),
           "enclaves: image revoked")  # fmt: skip
    failed(kalypso(chain.env(ALICE), "admin", "revoke-image", plonk, "pvs", "-y"),
           "enclaves: not the market creator")  # fmt: skip
    failed(kalypso(chain.env(), "admin", "revoke-image", markets["square_root"], "ivs", "-y"),
           "market 2 has no ivs image")  # fmt: skip


def test_token_mint_transfer_balance_and_minters(chain: Chain) -> None:
    minted = ok(kalypso(chain.env(), "token", "mint", ALICE.address, "5"))
    assert f"minted 5 KAL to {ALICE.address}; its wallet holds 5 KAL" in minted.out
    shown = json.loads(
        ok(kalypso(chain.env(None), "token", "balance", ALICE.address, "--json")).out
    )
    assert shown["tokens"] == 5 * KAL and shown["wei"] > 0
    refused = failed(kalypso(chain.env(ALICE), "token", "mint", ALICE.address, "5"),
                     "[K-CON-001]", "may not mint")  # fmt: skip
    assert OWNER.address in refused
    ok(kalypso(chain.env(), "admin", "set-minter", ALICE.address, "-y"))
    ok(kalypso(chain.env(ALICE), "token", "mint", ALICE.address, "1 KAL"))
    sent = ok(kalypso(chain.env(ALICE), "token", "transfer", BOB.address, "1.5"))
    assert f"transferred 1.5 KAL to {BOB.address}" in sent.out
    mine = ok(kalypso(chain.env(ALICE), "token", "balance")).out
    assert ALICE.address in mine and "4.5 KAL" in mine and "ETH" in mine
    failed(kalypso(chain.env(BOB), "token", "transfer", ALICE.address, "2"),
           "erc20: transfer amount exceeds balance")  # fmt: skip
    failed(kalypso(chain.env(), "token", "transfer", BOB.address, "0"), "more than zero")
    # the token's ownership moves in one step, with its minting
    ok(kalypso(chain.env(), "admin", "transfer-ownership", "token", BOB.address, "-y"))
    failed(kalypso(chain.env(), "token", "mint", BOB.address, "1"), "may not mint")
    ok(kalypso(chain.env(BOB), "token", "mint", BOB.address, "1"))


def test_a_rerun_after_a_mined_action_reports_it_instead_of_sending_again(chain: Chain) -> None:
    # The crash: `kalypso admin set-treasury ALICE` died after its transaction was mined;
    # its action log is what that run left.
    client = chain.client(OWNER)
    call = client.set_treasury(ALICE.address)
    log = ActionLog(chain.home / ".kalypso" / "actions" / f"31337-{OWNER.address}.sqlite")
    key = action_key("admin set-treasury", call.key())
    log.begin(key, "admin set-treasury", call.key())
    client.record(lambda tx, nonce, fn: log.sent(key, tx, nonce, fn))
    receipt = client.send(call)
    log.close()
    w3 = chain.anvil.web3()
    nonce = w3.eth.get_transaction_count(OWNER.address)
    again = ok(kalypso(chain.env(), "admin", "set-treasury", ALICE.address, "-y"))
    assert "already done" in again.out and receipt["transactionHash"].hex() in again.out
    assert w3.eth.get_transaction_count(OWNER.address) == nonce
    ok(kalypso(chain.env(), "admin", "set-treasury", ALICE.address, "-y"))  # a new action
    assert w3.eth.get_transaction_count(OWNER.address) == nonce + 1


def test_without_a_terminal_nothing_is_sent_unless_yes(chain: Chain) -> None:
    refused = kalypso(chain.env(), "admin", "set-market-creation-fee", "3")
    line = failed(refused, "no terminal to confirm set_market_creation_fee", "--yes")
    assert refused.err.strip() == line  # one line, and nothing shown as if it were sent
    assert chain.state().market_creation_fee == 0


def test_a_keystore_password_from_a_file_with_stdin_closed(chain: Chain) -> None:
    key, secret = keystore(chain.home, OWNER, "correct horse")
    env = chain.env(None, KALYPSO_KEYSTORE=str(key), KALYPSO_KEYSTORE_PASSWORD_FILE=str(secret))
    ok(process(env, "admin", "set-market-creation-fee", "3", "--yes"))
    assert chain.state().market_creation_fee == 3 * KAL
    # a revert is one named line, exit 1
    reverted = process(env, "admin", "set-market-registry", ALICE.address, "--yes")
    failed(
        reverted,
        "[K-CON-003] config: market registry already set — the market registry is set once",
    )


def test_keystore_new_and_import(chain: Chain) -> None:
    secret = chain.home / "pw"
    secret.write_text("s3cret\n")
    out = chain.home / "deployer.json"
    env = chain.env(None, KALYPSO_KEYSTORE_PASSWORD_FILE=str(secret))
    made = ok(kalypso(env, "keystore", "new", "--out", out))
    address = made.out.strip()
    assert Web3.is_checksum_address(address) and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_account(None, out, password="s3cret").address == address
    failed(kalypso(env, "keystore", "new", "--out", out), "exists", "never overwritten")
    asked = kalypso(chain.env(None), "keystore", "new", "--out", chain.home / "other.json")
    failed(asked, "no terminal", "KALYPSO_KEYSTORE_PASSWORD_FILE")
    imported = chain.home / "alice.json"
    env = chain.env(ALICE, KALYPSO_KEYSTORE_PASSWORD="alice pw")
    assert ok(kalypso(env, "keystore", "import", "--out", imported)).out.strip() == ALICE.address
