"""The generator node's pure parts: its config, its SQLite task journal fed hand-made
events, the market prover around a fake backend, the sample solver and token amounts."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator, Mapping
from decimal import Context, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalypso.amounts import format_amount, parse_amount
from kalypso.chain import BlockRef, FollowerState, LogBatch
from kalypso.chain.sender import SentTx
from kalypso.circuits.solvers import load_solver, square_root
from kalypso.errors import ConfigError
from kalypso.generator.config import EXAMPLE, GeneratorConfig, MarketConfig
from kalypso.generator.journal import Phase, TaskJournal
from kalypso.generator.proving import MarketProver, build_prover
from kalypso.market import encode_signals
from kalypso.market.events import DecodedEvent
from kalypso.provers import Groth16Proof, InvalidInputs
from tests.unit.test_matcher_parts import Chain, addr, block_hash, rid

BIG = 2**96 - 1  # the largest token amount; far above SQLite's 64-bit integers
ME, OTHER = addr(1), addr(2)
IDENTITY = {"chain_id": 31337, "marketplace": addr(0xA0), "generator": ME}


@pytest.fixture(autouse=True)
def decimal_defaults() -> Iterator[None]:
    """Vyper (imported by the unit conftest) raises Decimal's precision to 78 for the whole
    process; the daemon and CLI run at Python's default 28 digits."""
    with localcontext(Context(prec=28)):
        yield


# ===================================================================== config


def config(text: str = "") -> dict[str, Any]:
    """A valid config dict with the keys of the TOML `text` set (a value "" drops a key):
    `markets.m.price = 1` sets a key of its one market `m`."""
    table = {"price": 10, "proof_time": 60, "circuit": "square_root"}
    merged: dict[str, Any] = {"stake": 10**21, "compute": 4, "markets": {"m": table}}

    def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            elif value == "":
                into.pop(key)
            else:
                into[key] = value

    merge(merged, tomllib.loads(text))
    return merged


def cases(text: str) -> list[str]:
    return text.split("|")


def test_a_valid_config() -> None:
    loaded = GeneratorConfig.from_dict(config("markets.m = {compute_per_request=4, timeout=30}"))
    (market,) = loaded.markets
    assert (loaded.stake, loaded.compute) == (10**21, 4)
    assert market == MarketConfig("m", 10, 60, 4, circuit="square_root", timeout=30.0)
    assert isinstance(market.timeout, float) and market.trust_market_code is False
    trusting = GeneratorConfig.from_dict(config("markets.m.trust_market_code = true"))
    assert trusting.markets[0].trust_market_code is True
    loaded = GeneratorConfig.from_dict(tomllib.loads(EXAMPLE))
    assert (loaded.stake, loaded.compute, loaded.api_port) == (10**21, 4, 7400)
    assert [(m.market, m.circuit, m.solver) for m in loaded.markets] == [("square_root",) * 3]


@pytest.mark.parametrize(
    ("markets", "message"),
    [(None, r"add at least one \[markets"), ({}, "add at least one"), ("m", "add at least one"),
     ({"m": 5}, r"\[markets\.m\] has the wrong type"),
     ({0: config()["markets"]["m"], "0": config()["markets"]["m"]},
      r"\[markets\.0\] is listed twice")],
)  # fmt: skip
def test_a_bad_markets_table(markets: Any, message: str) -> None:
    raw = {**config(), "markets": markets}
    if markets is None:
        del raw["markets"]
    with pytest.raises(ConfigError, match=message):
        GeneratorConfig.from_dict(raw)


@pytest.mark.parametrize("line", cases('stake = ""|compute = ""|markets.m.price = ""'
                                       '|markets.m.proof_time = ""'))  # fmt: skip
def test_a_missing_required_key(line: str) -> None:
    key = line.split()[0].rsplit(".")[-1]
    with pytest.raises(ConfigError, match=rf"missing required key\(s\) {key}"):
        GeneratorConfig.from_dict(config(line))


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match=r"cfg: unknown key\(s\) rpc, stak"):
        GeneratorConfig.from_dict(config('stak = 1\nrpc = "x"'), source="cfg")
    with pytest.raises(ConfigError, match=r"cfg: \[markets\.m\]: unknown key\(s\) gpu"):
        GeneratorConfig.from_dict(config("markets.m.gpu = true"), source="cfg")


@pytest.mark.parametrize(
    "line",
    cases('stake = "1"|compute = true|rpc_url = 8545|state = 1|api_port = 1.0'
          '|poll_interval = "0.5"|markets.m.price = 1.5|markets.m.proof_time = "60"'
          '|markets.m.timeout = true|markets.m.prover = 1|markets.m.wasm = 2'
          '|markets.m.command = "./prove"|markets.m.command = []|markets.m.command = ["a", 1]'
          '|markets.m.trust_market_code = "yes"|markets.m.trust_market_code = 1'),
)  # fmt: skip
def test_a_wrong_type_is_named(line: str) -> None:
    key = line.split()[0].rsplit(".")[-1]
    with pytest.raises(
        ConfigError, match=rf"^\[K-CFG-001\] cfg: (\[markets\.m\]: )?{key} has the wrong"
    ):
        GeneratorConfig.from_dict(config(line), source="cfg")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("markets.m.proof_time = 0", "proof_time must be 1 to 86400"),
        ("markets.m.proof_time = 86_401", "proof_time must be 1 to 86400"),
        ("markets.m.price = -1", "price must be 0 to 2"),
        (f"markets.m.price = {2**96}", "price must be 0 to 2"),
        ("markets.m.compute_per_request = 0", "compute_per_request must be at least 1"),
        ("markets.m.timeout = 0", "timeout must be positive"),
        ("markets.m.timeout = inf", "timeout must be positive"),
        ('markets.m.prover = "gpu"', "prover must be one of snarkjs, command, http"),
        ('markets.m.prover = "command"', 'prover "command" needs command'),
        ('markets.m.prover = "http"', 'prover "http" needs url'),
        ('markets.m.circuit = ""', "name a sample `circuit`"),
        ('markets.m = {circuit = "", wasm = "c.wasm", zkey = "c.zkey"}', "name a sample"),
        ('markets.m = {prover = "http", url = "http://p", circuit = ""}', "name a sample"),
        ("markets.m.compute_per_request = 5", "needs 5 compute per request, above .* compute 4"),
        ("stake = 0", "stake must be positive"),
        (f"stake = {2**128}", "stake must be positive"),
        ("compute = 0", "compute must be at least 1"),
        ("max_parallel_proofs = 0", "max_parallel_proofs must be at least 1"),
        ("api_port = 65536", "api_port must be a port number"),
        ("confirmations = -1", "confirmations ≥ 0"),
        ("poll_interval = 0", "poll_interval > 0"),
        ("submit_margin = nan", "submit_margin, batch_window, rpc_rate and startup_timeout ≥ 0"),
        ("batch_window = -1", "submit_margin, batch_window, rpc_rate and startup_timeout ≥ 0"),
        ('markets.m.api = "marlin"', 'api must be "kalypso" or "legacy"'),
        ('markets.m.api = "legacy"', 'api = "legacy" goes with prover = "http"'),
        ('markets.m = {prover = "enclave", url = "u", api = "legacy"}', "inside the Generator"),
        ('markets.m.ivs_url = "http://i"', 'ivs_url and public_encoding go with api = "legacy"'),
        ('markets.m = {prover = "http", url = "u", api = "legacy", solver = "square_root"}',
         "finds its own witness"),
        ('markets.m = {prover = "http", url = "u", api = "legacy", public_encoding = "packed", '
         'circuit = ""}',
         'public_encoding must be "fixed" or "verbatim"'),
    ],
)  # fmt: skip
def test_a_value_out_of_range(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GeneratorConfig.from_dict(config(line))


@pytest.mark.parametrize(
    "line",
    ["markets.m.proof_time = 1", f"markets.m = {{proof_time = 86_400, price = {BIG}}}",
     'markets.m = {prover = "command", command = ["./prove"], circuit = ""}',
     'markets.m = {prover="http", url="u", circuit="", wasm="w", zkey="z", schema="s"}',
     'markets.m = {prover="http", url="u", circuit="", api="legacy", ivs_url="i"}',
     'markets.m = {prover="http", url="u", api="legacy", public_encoding="verbatim", circuit=""}'],
)  # fmt: skip
def test_edge_values_and_provers_that_pass(line: str) -> None:
    GeneratorConfig.from_dict(config(line))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "generator.toml"
    path.write_text(text)
    return path


def test_load_and_the_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    assert GeneratorConfig.load(path, env={}).rpc_url == "http://127.0.0.1:8545"
    env = {"KALYPSO_RPC_URL": "http://env:8545", "KALYPSO_DEPLOYMENT": "~/d.json"}
    loaded = GeneratorConfig.load(path, env=env)
    assert (loaded.rpc_url, loaded.deployment) == ("http://env:8545", Path.home() / "d.json")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no generator config at .*nope\.toml.*--example"):
        GeneratorConfig.load(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match=r"generator\.toml is not valid TOML"):
        GeneratorConfig.load(write(tmp_path, "stake = \n"), env={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        GeneratorConfig.load(tmp_path, env={})
    path = write(tmp_path, "stake = 1\ncompute = 1\n")
    with pytest.raises(ConfigError, match=rf"{path}: add at least one"):
        GeneratorConfig.load(path, env={})


# ==================================================================== journal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[TaskJournal]:
    j = TaskJournal(tmp_path / "g.sqlite", IDENTITY)
    yield j
    j.close()


def apply(journal: TaskJournal, *events: DecodedEvent) -> list[bytes]:
    """Apply `events` as one batch up to the last event's block; the cursor follows."""
    last = max(e.block_number for e in events)
    tip = BlockRef(last, block_hash(last))
    return journal.apply(LogBatch(0, last, tip, list(events)), FollowerState(last + 1, (tip,)), ME)


def assign(chain: Chain, i: int, generator: str = ME, price: int = 50) -> DecodedEvent:
    args = {"market_id": 3, "price": price, "deadline": 1_000 + i, "generator_secret": b"key"}
    return chain.emit("TaskAssigned", task_id=rid(i), generator=generator, **args)


def settle(chain: Chain, name: str, i: int, **amounts: int) -> DecodedEvent:
    return chain.emit(name, task_id=rid(i), market_id=3, generator=ME, **amounts)


def test_an_assignment_to_this_generator_is_a_seen_task(journal: TaskJournal) -> None:
    chain = Chain()
    assert apply(journal, assign(chain, 1), assign(chain, 2, generator=OTHER)) == [rid(1)]
    (task,) = journal.tasks()
    assert (task.id, task.market_id, task.phase, task.price) == (rid(1), 3, Phase.SEEN, 50)
    assert (task.deadline, task.assigned_block, task.generator_secret) == (1_001, 100, b"key")
    assert journal.get(rid(2)) is None
    chain.mine()
    assert apply(journal, assign(chain, 1, price=99)) == []  # a repeat changes nothing
    assert journal.tasks() == [task]


@pytest.mark.parametrize(
    ("name", "amounts", "phase"),
    [("ProofSubmitted", {"payment": BIG, "refund": 1, "proof": b"p"}, Phase.CONFIRMED),
     ("InvalidInputsProven", {"payment": BIG, "refund": 1}, Phase.INVALID_CLAIMED),
     ("TaskDiscarded", {"penalty": BIG}, Phase.DISCARDED),
     ("TaskSlashed", {"slasher": OTHER, "penalty": BIG, "bounty": 1}, Phase.SLASHED)],
)  # fmt: skip
def test_a_settlement_sets_the_final_phase(
    journal: TaskJournal, name: str, amounts: dict[str, Any], phase: Phase
) -> None:
    chain = Chain()
    apply(journal, assign(chain, 1, price=BIG))
    chain.mine()
    assert apply(journal, settle(chain, name, 1, **amounts), settle(chain, name, 9)) == [rid(1)]
    # read again after a restart: not news (the node logged "task settled" twice)
    assert apply(journal, settle(chain, name, 1, **amounts)) == []
    task = journal.get(rid(1))
    assert task is not None and task.phase is phase and task.price == BIG
    assert (task.payment, task.penalty) == (amounts.get("payment", 0), amounts.get("penalty", 0))


def test_the_cursor_is_saved_with_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    journal = TaskJournal(path, IDENTITY)
    assert journal.follower_state(7) == FollowerState(7)
    chain = Chain(block=120)
    apply(journal, assign(chain, 1))
    broken = chain.emit("TaskAssigned", task_id=rid(2), generator=ME)  # no price: a KeyError
    with pytest.raises(KeyError):
        apply(journal, assign(chain, 3), broken)
    journal.close()
    journal = TaskJournal(path, IDENTITY)
    assert journal.follower_state(0) == FollowerState(121, (BlockRef(120, block_hash(120)),))
    assert [t.id for t in journal.tasks()] == [rid(1)]  # the failed batch left nothing
    journal.close()


def rolled_back(journal: TaskJournal) -> Chain:
    """Task 1 assigned at 100 and settled at 106, task 2 assigned at 105; undo above 104."""
    chain = Chain()
    apply(journal, assign(chain, 1))
    chain.block = 105
    apply(journal, assign(chain, 2))
    chain.mine()
    apply(journal, settle(chain, "TaskSlashed", 1, payment=0, penalty=7))
    journal.rollback(104, FollowerState(105))
    return chain


def test_a_rollback_undoes_assignments_and_settlements(journal: TaskJournal) -> None:
    rolled_back(journal)
    (task,) = journal.tasks()
    assert (task.id, task.phase, task.payment) == (rid(1), Phase.SUBMITTED, 0)
    assert journal.follower_state(0) == FollowerState(105)


def test_a_replayed_slash_after_a_rollback_counts_its_penalty_once(journal: TaskJournal) -> None:
    chain = rolled_back(journal)
    chain.mine()
    apply(journal, settle(chain, "TaskSlashed", 1, penalty=7))
    task = journal.get(rid(1))
    assert task is not None and task.penalty == 7


def test_move_honours_only_from_and_never_changes_a_final_task(journal: TaskJournal) -> None:
    chain = Chain()
    apply(journal, assign(chain, 1), assign(chain, 2))
    assert journal.move(rid(1), Phase.PROVING, only_from=[Phase.SEEN], attempts=2)
    assert not journal.move(rid(1), Phase.READY, only_from=[Phase.FETCHED], proof=b"p")
    task = journal.get(rid(1))
    assert task is not None and (task.phase, task.attempts, task.proof) == (Phase.PROVING, 2, None)
    apply(journal, settle(chain, "TaskDiscarded", 2, penalty=1))
    assert not journal.move(rid(2), Phase.READY)
    assert not journal.move(rid(9), Phase.READY)
    assert [t.phase for t in journal.tasks()] == [Phase.PROVING, Phase.DISCARDED]


def sent(n: int) -> SentTx:
    return SentTx(bytes([n]) * 32, nonce=n, max_fee=10, priority_fee=1)


def test_record_sent_appends_hashes(journal: TaskJournal) -> None:
    chain = Chain()
    apply(journal, assign(chain, 1), assign(chain, 2))
    apply(journal, settle(chain, "TaskSlashed", 2, penalty=1))
    journal.record_sent([rid(1), rid(2)], sent(1), "proof")
    journal.record_sent([rid(1)], sent(2), "proof")
    one, two = journal.get(rid(1)), journal.get(rid(2))
    assert one is not None and two is not None
    assert (one.phase, one.action) == (Phase.SUBMITTED, "proof")
    assert one.tx_hashes == [sent(1).hash, sent(2).hash]
    assert two.phase is Phase.SLASHED


def test_gas_is_split_with_the_remainder_to_the_first_and_totals(journal: TaskJournal) -> None:
    chain = Chain()
    apply(journal, *(assign(chain, i) for i in (1, 2, 3)))
    journal.add_gas([rid(2), rid(1), rid(3)], 11)
    journal.add_gas([rid(1)], 2**70)
    assert [journal.get(rid(i)).gas_cost for i in (1, 2, 3)] == [3 + 2**70, 5, 3]  # type: ignore[union-attr]
    paid = settle(chain, "ProofSubmitted", 1, payment=BIG)
    apply(journal, paid, settle(chain, "TaskSlashed", 2, penalty=BIG))
    journal.add_spending("register", 2**65)
    totals = journal.totals()
    assert (totals.revenue, totals.penalties, totals.gas_wei) == (BIG, BIG, 11 + 2**70 + 2**65)
    assert totals.by_phase == {"confirmed": 1, "slashed": 1, "seen": 1}


def test_paused_persists_and_a_journal_keeps_its_identity(tmp_path: Path) -> None:
    for before, after in [(False, True), (True, False), (False, False)]:
        journal = TaskJournal(tmp_path / "g.sqlite", IDENTITY)
        assert journal.paused is before
        journal.set_paused(after)
        journal.close()
    with pytest.raises(ConfigError, match="journal of another deployment, shard or key"):
        TaskJournal(tmp_path / "g.sqlite", {**IDENTITY, "generator": OTHER})


def test_one_journal_at_a_time_and_read_only_beside_it(journal: TaskJournal) -> None:
    with pytest.raises(ConfigError, match="another generator is running"):
        TaskJournal(journal.path, IDENTITY)
    apply(journal, assign(Chain(), 1))
    journal.set_paused(True)
    reader = TaskJournal.read_only(journal.path)
    assert [t.id for t in reader.tasks()] == [rid(1)] and reader.paused
    reader.close()
    with pytest.raises(ConfigError, match="no journal at"):
        TaskJournal.read_only(journal.path.with_name("none.sqlite"))


# ==================================================================== proving


def proof_of(*signals: int) -> Groth16Proof:
    return Groth16Proof((1, 2), ((3, 4), (5, 6)), (7, 8), signals)


class FakeProver:
    def __init__(self, result: Groth16Proof | InvalidInputs) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    async def prove(self, inputs: Mapping[str, Any]) -> Groth16Proof | InvalidInputs:
        self.calls.append(dict(inputs))
        return self.result

    async def close(self) -> None:
        pass


CONFIG = MarketConfig("m", 1, 60, prover="command", command=("./prove",))
SIGNALS = encode_signals([9, 2, 3])  # out, a, c


def market_prover(result: Any = None, solver: Any = None, schema: bool = True) -> MarketProver:
    fake = FakeProver(proof_of(9, 2, 3) if result is None else result)
    inputs = {"a": "public", "b": "private", "c": "public", "d": "private"} if schema else None
    signals = ["out", "a", "c"] if schema else None
    return MarketProver(0, CONFIG, fake, inputs, signals, solver)


def test_prover_inputs_follow_the_schema_and_merge_the_secret() -> None:
    assert market_prover().prover_inputs(SIGNALS, b'{"b": 5}') == {"a": 2, "c": 3, "b": 5}
    assert market_prover().prover_inputs(SIGNALS, None) == {"a": 2, "c": 3}
    raw_inputs = market_prover(schema=False).prover_inputs(b"\x01\x02", None)
    assert raw_inputs == {"public_inputs": "0x0102"}


@pytest.mark.parametrize(
    ("inputs", "secret", "message"),
    [
        (encode_signals([1]), None, "the task has 1 public signals, the circuit 3"),
        (SIGNALS, b"[5]", "not a JSON object"),
        (b"\x01", None, "not an ABI uint256"),
    ],
)
async def test_inputs_that_do_not_fit_are_invalid(inputs: bytes, secret: Any, message: str) -> None:
    prover = market_prover()
    with pytest.raises(ConfigError, match=message):
        prover.prover_inputs(inputs, secret)
    result = await prover.prove(inputs, secret)
    assert isinstance(result, InvalidInputs) and "do not fit the circuit" in result.reason
    assert prover.prover.calls == []  # type: ignore[attr-defined]


async def test_prove_returns_a_proof_of_the_requested_signals() -> None:
    prover = market_prover(solver=lambda inputs: {"d": inputs["a"] * 10})
    assert await prover.prove(SIGNALS, b'{"b": 5}') == proof_of(9, 2, 3)
    assert prover.prover.calls == [{"a": 2, "c": 3, "b": 5, "d": 20}]  # type: ignore[attr-defined]


async def test_a_proof_of_other_signals_or_a_verdict_means_invalid_inputs() -> None:
    result = await market_prover(proof_of(8, 2, 3)).prove(SIGNALS, b'{"b": 4}')
    assert isinstance(result, InvalidInputs) and "other public signals" in result.reason
    verdict = InvalidInputs("no witness")
    assert await market_prover(verdict).prove(SIGNALS, None) == verdict
    prover = market_prover(solver=lambda _: verdict)
    assert await prover.prove(SIGNALS, None) == verdict
    assert prover.prover.calls == []  # type: ignore[attr-defined]


def test_load_solver() -> None:
    assert load_solver("square_root") is square_root
    assert load_solver("kalypso.circuits.solvers:square_root") is square_root
    for name in ("nope", "os:nonexistent", "os"):
        with pytest.raises(ConfigError, match=f"no solver '{name}'"):
            load_solver(name)
    with pytest.raises(ConfigError, match="is not a function"):
        load_solver("os:sep")


def test_load_a_solver_from_a_creators_file(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def solve(inputs):\n    return {'root': 7}\n")
    assert load_solver(f"{tmp_path}/mine.py:solve")({"square": 49}) == {"root": 7}
    for spec, message in (
        (f"{tmp_path}/mine.py:nope", "no solver 'nope'"),
        (f"{tmp_path}/none.py:solve", "no solver file"),
        (f"{tmp_path}/broken.py:solve", "fails to load: RuntimeError"),
    ):
        (tmp_path / "broken.py").write_text("raise RuntimeError('at import')\n")
        with pytest.raises(ConfigError, match=message):
            load_solver(spec)


def test_build_prover_checks_the_command() -> None:
    missing = MarketConfig("m", 1, 60, prover="command", command=("/no/such/prover",))
    with pytest.raises(ConfigError, match="cannot run the prover command '/no/such/prover'"):
        build_prover(0, missing, worker=None)  # type: ignore[arg-type]
    config = MarketConfig(
        "m", 1, 60, prover="command", command=(sys.executable,), solver="square_root"
    )
    prover = build_prover(0, config, worker=None)  # type: ignore[arg-type]
    assert prover.inputs is None and prover.solver is square_root


# ==================================================================== solvers


@pytest.mark.parametrize(
    ("square", "max_root", "result"),
    [(49, 7, {"root": 7}), (0, 0, {"root": 0}), (65_535**2, 65_535, {"root": 65_535}),
     (50, 100, "not a perfect square"), (64, 7, "above max_root 7"), (4, 2**16, "not below 2^16")],
)  # fmt: skip
def test_square_root(square: int, max_root: int, result: Any) -> None:
    solved = square_root({"square": square, "max_root": max_root})
    if isinstance(result, dict):
        assert solved == result
    else:
        assert isinstance(solved, InvalidInputs) and result in solved.reason


squares = st.one_of(st.integers(0, 2**36), st.integers(0, 2**18).map(lambda r: r * r))


@given(square=squares, max_root=st.integers(0, 2**17))
def test_square_root_finds_a_root_exactly_when_one_exists(square: int, max_root: int) -> None:
    solved = square_root({"square": square, "max_root": max_root})
    root = round(square**0.5)  # exact for squares below 2^52
    exists = root * root == square and root <= max_root < 2**16
    if isinstance(solved, InvalidInputs):
        assert not exists
    else:
        assert exists and solved["root"] ** 2 == square and solved["root"] <= max_root


# ==================================================================== amounts


def test_amounts_examples() -> None:
    assert format_amount(1_500_000_000_000_000_000) == "1.5 KAL"
    assert format_amount(1_234 * 10**18) == "1,234 KAL"
    assert format_amount(0) == "0 KAL" and format_amount(1) == "0.000000000000000001 KAL"
    assert format_amount(1_500_000, decimals=6, symbol="USDC") == "1.5 USDC"
    assert parse_amount("1.5 KAL") == parse_amount(" 1.5 kal ") == 15 * 10**17
    assert parse_amount("1,234.5") == parse_amount("1_234.5") == 12_345 * 10**17
    assert parse_amount("1.5 USDC", decimals=6, symbol="USDC") == 1_500_000
    assert parse_amount(7) == 7 and parse_amount(BIG) == BIG


@pytest.mark.parametrize("text", ["", "KAL", "abc", "1.5 ETH", "-1", "1e-19", "0.1.2", "nan"])
def test_a_bad_amount_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_amount(text)


@given(st.one_of(st.integers(0, BIG), st.integers(0, BIG // 10**12).map(lambda m: m * 10**12)))
def test_amounts_round_trip_to_the_six_decimals_shown(base: int) -> None:
    back = parse_amount(format_amount(base))
    if base % 10**12 == 0 or base <= 5 * 10**11:  # nothing hidden, or all of it shown
        assert back == base
    assert abs(back - base) <= 5 * 10**11 + 1


def test_every_base_unit_of_a_large_amount_is_parsed() -> None:
    assert parse_amount(f"{BIG // 10**18}.{BIG % 10**18:018d} KAL") == BIG


@pytest.mark.parametrize("text", ["inf", "Infinity KAL"])
def test_infinity_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_amount(text)
