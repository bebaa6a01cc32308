"""The matcher daemon's parts without a chain: its config, its SQLite journal, and the view
it builds from hand-made events. `Chain` is shared with `test_matcher_api.py`."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from kalypso.chain import BlockRef, FollowerState, LogBatch
from kalypso.chain.sender import SentTx
from kalypso.contracts import artifact
from kalypso.errors import ConfigError
from kalypso.market import Request
from kalypso.market.events import DecodedEvent, marketplace_decoder
from kalypso.matching import Match, OrderBook
from kalypso.matching.config import EXAMPLE, MAX_BATCH, MatcherConfig
from kalypso.matching.feed import ChainView
from kalypso.matching.model import DISCARDED_BY, NO_STAKE
from kalypso.matching.store import MatcherStore, decode_event, encode_event

NOW = 1_700_000_000
PENALTY = 10
KEY = b"\x07" * 32
ZERO = "0x" + "00" * 20
NO_IMAGE = b"\x00" * 32


def addr(i: int) -> str:
    return to_checksum_address(i.to_bytes(20, "big"))


def rid(i: int) -> bytes:
    return keccak(i.to_bytes(32, "big"))


MARKETPLACE, REGISTRY, OWNER, REQUESTER, REFUND = (addr(0xA0 + i) for i in range(5))
G1, G2, G3 = addr(1), addr(2), addr(3)
_REGISTRY_EVENTS = {
    "GeneratorRegistered",
    "StakeAdded",
    "StakeRemoved",
    "StakeForfeited",
    "ComputeChanged",
    "OfferSet",
    "MarketLeft",
    "ExitRequested",
    "GeneratorWithdrawn",
}


_FINISH_ARGS: dict[str, dict[str, Any]] = {
    "ProofSubmitted": {"payment": 50, "refund": 50, "proof": b"proof"},
    "InvalidInputsProven": {"payment": 50, "refund": 50},
    "TaskSlashed": {"slasher": OWNER, "penalty": PENALTY},
    "TaskDiscarded": {"penalty": PENALTY},
}


def block_hash(number: int) -> bytes:
    return b"\xbb" + number.to_bytes(31, "big")


class Chain:
    """Hand-made logs in chain order, with the contracts' arg names (`requests.vy`,
    `markets.vy`, `GeneratorRegistry.vy`): each call is the next log of the current block,
    `mine()` starts the next block. Requests are numbered: request `i` has id `rid(i)`."""

    def __init__(self, block: int = 100) -> None:
        self.block = block
        self.index = 0
        self.events: list[DecodedEvent] = []

    def mine(self) -> None:
        self.block += 1
        self.index = 0

    def emit(self, name: str, **args: Any) -> DecodedEvent:
        event = DecodedEvent(
            name,
            args,
            REGISTRY if name in _REGISTRY_EVENTS else MARKETPLACE,
            self.block,
            block_hash(self.block),
            keccak(f"{self.block}/{self.index}".encode()),
            self.index,
        )
        self.index += 1
        self.events.append(event)
        return event

    def market(
        self,
        market_id: int = 0,
        penalty: int = PENALTY,
        *,
        verifier: str = addr(0xC0),
        generator_image: bytes = NO_IMAGE,
        ivs: bytes = NO_IMAGE,
        pvs: bytes = NO_IMAGE,
    ) -> DecodedEvent:
        return self.emit(
            "MarketCreated",
            market_id=market_id,
            creator=OWNER,
            verifier=verifier,
            input_verifier=ZERO,
            slashing_penalty=penalty,
            generator_image=generator_image,
            input_verification_image=ivs,
            proof_verification_image=pvs,
        )

    def generator(self, generator: str, compute: int = 10, stake: int = 1_000) -> DecodedEvent:
        return self.emit(
            "GeneratorRegistered",
            generator=generator,
            index=int(generator, 16),
            reward_address=generator,
            declared_compute=compute,
            stake=stake,
        )

    def offer(
        self,
        generator: str,
        market_id: int = 0,
        price: int = 50,
        proof_time: int = 600,
        compute: int = 1,
        key: bytes = KEY,
    ) -> DecodedEvent:
        return self.emit(
            "OfferSet",
            generator=generator,
            market_id=market_id,
            joined=True,
            price=price,
            proof_time=proof_time,
            compute_per_request=compute,
            encryption_key=key,
        )

    def request(
        self,
        i: int,
        market_id: int = 0,
        max_price: int = 100,
        proof_time: int = 1_200,
        expiry: int = NOW + 3_600,
        secret: bytes = b"",
    ) -> DecodedEvent:
        return self.emit(
            "RequestCreated",
            request_id=rid(i),
            market_id=market_id,
            requester=REQUESTER,
            refund_address=REFUND,
            max_price=max_price,
            proof_time=proof_time,
            expiry=expiry,
            salt=i.to_bytes(32, "big"),
            public_inputs=b"inputs %d" % i,
            encrypted_secret=secret,
        )

    def assign(
        self, i: int, generator: str, deadline: int = NOW + 600, market_id: int = 0
    ) -> DecodedEvent:
        return self.emit(
            "TaskAssigned",
            task_id=rid(i),
            market_id=market_id,
            generator=generator,
            price=50,
            deadline=deadline,
            generator_secret=b"",
        )

    def finish(self, name: str, i: int, generator: str, market_id: int = 0) -> DecodedEvent:
        """ProofSubmitted, InvalidInputsProven, TaskSlashed or TaskDiscarded."""
        extra = _FINISH_ARGS[name]
        return self.emit(name, task_id=rid(i), market_id=market_id, generator=generator, **extra)

    def forfeit(self, generator: str, amount: int = PENALTY) -> DecodedEvent:
        return self.emit("StakeForfeited", generator=generator, amount=amount, missed=True)

    def cancel(self, name: str, i: int, market_id: int = 0) -> DecodedEvent:
        """RequestCancelled or RequestExpired."""
        return self.emit(name, request_id=rid(i), market_id=market_id, refund=100)

    def raise_price(self, i: int, max_price: int, market_id: int = 0) -> DecodedEvent:
        return self.emit(
            "MaxPriceIncreased", request_id=rid(i), market_id=market_id, max_price=max_price
        )


def feed(view: ChainView, *events: DecodedEvent) -> ChainView:
    for event in events:
        view.apply(event)
    return view


def replay(events: list[DecodedEvent], **kwargs: Any) -> ChainView:
    return feed(ChainView(OrderBook(), **kwargs), *events)


def matched(view: ChainView, now: int = NOW) -> list[tuple[bytes, str]]:
    return [(m.request_id, m.generator) for m in view.book.match(now, 32)]


def rule_of(view: ChainView, i: int, generator: str) -> str | None:
    checks = view.book.explain(rid(i), NOW).checks
    return next(c.rule for c in checks if c.generator == generator)


@pytest.fixture
def chain() -> Chain:
    """Market 0 exists."""
    c = Chain()
    c.market()
    return c


# ===================================================================== config


def test_example_parses_to_the_defaults() -> None:
    assert MatcherConfig.from_dict(tomllib.loads(EXAMPLE)) == MatcherConfig()


def test_example_sets_every_uncommented_key_to_its_default() -> None:
    defaults = MatcherConfig()
    for key, value in tomllib.loads(EXAMPLE).items():
        assert getattr(defaults, key) == value, key


def test_example_commented_keys_are_valid_once_uncommented() -> None:
    uncommented = re.sub(r"^# (\w+ = )", r"\1", EXAMPLE, flags=re.MULTILINE)
    raw = tomllib.loads(uncommented)
    enclave = {"enclave_url": raw.pop("enclave_url")}  # an alternative to encryption_key
    with pytest.raises(ConfigError, match="not both"):
        MatcherConfig.from_dict(raw | enclave)
    assert MatcherConfig.from_dict({**enclave}).enclave_url == "http://127.0.0.1:7310"
    config = MatcherConfig.from_dict(raw)
    changed = {
        f.name
        for f in fields(config)
        if getattr(config, f.name) != getattr(MatcherConfig(), f.name)
    }
    assert changed == {"deployment", "markets", "keystore", "state", "encryption_key"}
    assert config.markets == (0, 1)
    assert config.deployment == Path("~/.kalypso/deployments/31337.json").expanduser()


def test_example_names_every_key() -> None:
    for f in fields(MatcherConfig):
        assert re.search(rf"^(# )?{f.name} = ", EXAMPLE, flags=re.MULTILINE), f.name


def test_load_without_a_file_or_env_is_the_defaults() -> None:
    assert MatcherConfig.load(None, env={}) == MatcherConfig()


def test_load_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_text('rpc_url = "http://node:8545"\nmarkets = [3, 1, 3]\nstate = "~/m.sqlite"\n')
    config = MatcherConfig.load(path, env={})
    assert config.rpc_url == "http://node:8545"
    assert config.markets == (1, 3)
    assert config.state == Path.home() / "m.sqlite"


def test_integers_are_accepted_for_poll_interval() -> None:
    config = MatcherConfig.from_dict({"poll_interval": 2})
    assert config.poll_interval == 2.0 and isinstance(config.poll_interval, float)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rpc_url", 8545),
        ("api_host", ["127.0.0.1"]),
        ("deployment", 1),
        ("keystore", True),
        ("state", ["a"]),
        ("markets", 0),
        ("markets", "0,1"),
        ("markets", [0, True]),
        ("markets", [0, 1.5]),
        ("confirmations", "1"),
        ("batch_size", True),
        ("max_log_range", 2_000.0),
        ("api_port", "7300"),
        ("priority_fee_percent", 2.5),
        ("poll_interval", "0.5"),
        ("poll_interval", True),
        ("slash_overdue", 1),
        ("slash_overdue", "yes"),
    ],
)
def test_a_wrong_type_is_a_config_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^\[K-CFG-001\] cfg: {key} has the wrong type"):
        MatcherConfig.from_dict({key: value}, source="cfg")


def test_unknown_keys_are_all_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) api, rpc"):
        MatcherConfig.from_dict({"rpc": "x", "api": {"port": 1}, "api_port": 1})


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("batch_size", [1, MAX_BATCH], [0, MAX_BATCH + 1, -1]),
        ("priority_fee_percent", [100, 1_000], [99, 1_001, 0]),
        ("api_port", [0, 65_535], [-1, 65_536]),
        ("confirmations", [0, 12], [-1]),
        ("max_log_range", [1], [0, -5]),
        ("poll_interval", [0.01], [0, -0.5]),
    ],
)
def test_bounds(key: str, good: list[float], bad: list[float]) -> None:
    for value in good:
        assert getattr(MatcherConfig.from_dict({key: value}), key) == value
    for value in bad:
        with pytest.raises(ConfigError, match=key):
            MatcherConfig.from_dict({key: value})


@pytest.mark.parametrize("markets", [[], [-1, 2]])
def test_markets_must_be_a_non_empty_list_of_ids(markets: list[int]) -> None:
    with pytest.raises(ConfigError, match="markets must be a non-empty list"):
        MatcherConfig.from_dict({"markets": markets})


def test_a_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"no matcher config at .*nope\.toml.*--example"):
        MatcherConfig.load(path, env={})


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_text("rpc_url = \n")
    with pytest.raises(ConfigError, match=r"matcher\.toml is not valid TOML"):
        MatcherConfig.load(path, env={})


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        MatcherConfig.load(tmp_path, env={})


def test_an_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_text("batch_size = 64\n")
    with pytest.raises(ConfigError, match=rf"^\[K-CFG-001\] {re.escape(str(path))}: batch_size"):
        MatcherConfig.load(path, env={})


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_bytes(b'rpc_url = "\xff"\n')
    with pytest.raises(ConfigError):
        MatcherConfig.load(path, env={})


def test_env_rpc_url_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_text('rpc_url = "http://file:8545"\n')
    config = MatcherConfig.load(path, env={"KALYPSO_RPC_URL": "http://env:8545"})
    assert config.rpc_url == "http://env:8545"


def test_env_deployment_applies_without_a_file() -> None:
    config = MatcherConfig.load(None, env={"KALYPSO_DEPLOYMENT": "~/d.json"})
    assert config.deployment == Path.home() / "d.json"


def test_env_deployment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "matcher.toml"
    path.write_text('deployment = "/file.json"\n')
    config = MatcherConfig.load(path, env={"KALYPSO_DEPLOYMENT": "/env.json"})
    assert config.deployment == Path("/env.json")


def test_an_explicit_env_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALYPSO_RPC_URL", "http://process:8545")
    assert MatcherConfig.load(None, env={}).rpc_url == MatcherConfig().rpc_url
    assert MatcherConfig.load(None).rpc_url == "http://process:8545"


# ====================================================================== store

IDENTITY = {"chain_id": 31337, "marketplace": MARKETPLACE, "markets": "all"}


def rich_event(block: int, index: int) -> DecodedEvent:
    """An event with every kind of value the decoder produces, and some it could."""
    args = {
        "request_id": rid(block * 100 + index),
        "max_price": 2**256 - 1,
        "delta": -(2**255),
        "requester": G1,
        "joined": True,
        "reason": "registry: not enough compute ✓",
        "empty": b"",
        "nested": [b"\x00\x01", [7, "x", [b"\xff"]], []],
    }
    return DecodedEvent("Rich", args, MARKETPLACE, block, block_hash(block), rid(index), index)


def state_at(block: int) -> FollowerState:
    return FollowerState(
        block + 1, (BlockRef(block - 1, block_hash(block - 1)), BlockRef(block, block_hash(block)))
    )


def batch(*events: DecodedEvent, malformed: int = 0) -> LogBatch:
    last = max((e.block_number for e in events), default=1)
    bad = [({"blockNumber": last, "logIndex": 99, "data": "0x01"}, "undecodable")] * malformed
    return LogBatch(1, last, BlockRef(last, block_hash(last)), list(events), bad)


@pytest.fixture
def store(tmp_path: Path) -> MatcherStore:
    return MatcherStore(tmp_path / "journal" / "matcher.sqlite", IDENTITY)


def test_store_returns_events_in_block_then_log_index_order(store: MatcherStore) -> None:
    events = [rich_event(3, 1), rich_event(2, 5), rich_event(3, 0), rich_event(2, 0)]
    store.append(batch(*events[:2]), state_at(3))
    store.append(batch(*events[2:]), state_at(3))
    got = list(store.events())
    assert [(e.block_number, e.log_index) for e in got] == [(2, 0), (2, 5), (3, 0), (3, 1)]
    assert got == sorted(events, key=lambda e: (e.block_number, e.log_index))


def test_store_keeps_args_identical(store: MatcherStore) -> None:
    event = rich_event(7, 2)
    store.append(batch(event), state_at(7))
    (got,) = store.events()
    assert repr(got) == repr(event)  # repr: bytes stay bytes, bools stay bools


def test_store_round_trips_a_decoded_request_created_log(store: MatcherStore) -> None:
    abi = next(e for e in artifact("ProofMarketplace").abi if e.get("name") == "RequestCreated")
    plain = [i for i in abi["inputs"] if not i["indexed"]]
    values = [REFUND.lower(), 100, 1_200, NOW, b"\x05" * 32, b"inputs", b"secret"]
    log = {
        "address": MARKETPLACE.lower(),
        "topics": [
            event_abi_to_log_topic(abi),  # type: ignore[arg-type]
            rid(1),
            (3).to_bytes(32, "big"),
            b"\x00" * 12 + bytes.fromhex(REQUESTER[2:]),
        ],
        "data": abi_encode([i["type"] for i in plain], values),
        "blockNumber": 9,
        "blockHash": block_hash(9),
        "transactionHash": b"\x33" * 32,
        "logIndex": 4,
    }
    event = marketplace_decoder().decode(log)
    assert event["requester"] == REQUESTER and event["refund_address"] == REFUND
    store.append(batch(event), state_at(9))
    (got,) = store.events()
    assert repr(got) == repr(event)


def test_store_cursor_starts_at_the_start_block(store: MatcherStore) -> None:
    assert store.follower_state(42) == FollowerState(42)


def test_store_saves_the_cursor_with_the_batch(store: MatcherStore) -> None:
    store.append(batch(rich_event(5, 0)), state_at(5))
    assert store.follower_state(0) == state_at(5)


def test_store_append_is_atomic(store: MatcherStore) -> None:
    store.append(batch(rich_event(1, 0)), state_at(1))
    unencodable = DecodedEvent("Bad", {"x": object()}, MARKETPLACE, 3, b"\x00", b"\x00", 0)
    with pytest.raises(TypeError):
        store.append(batch(rich_event(2, 0), unencodable, malformed=1), state_at(3))
    assert [e.block_number for e in store.events()] == [1]
    assert store.follower_state(0) == state_at(1)
    assert store.malformed_count() == 0


def test_store_counts_malformed_logs(store: MatcherStore) -> None:
    store.append(batch(rich_event(1, 0), malformed=2), state_at(1))
    assert store.malformed_count() == 2


def test_store_appending_the_same_position_again_replaces_the_event(store: MatcherStore) -> None:
    store.append(batch(rich_event(4, 0)), state_at(4))
    other = DecodedEvent("Other", {"a": 1}, MARKETPLACE, 4, block_hash(4), rid(0), 0)
    store.append(batch(other), state_at(4))
    assert list(store.events()) == [other]


def test_store_rollback_deletes_later_events_and_saves_the_state(store: MatcherStore) -> None:
    store.append(batch(*(rich_event(b, 0) for b in (1, 2, 3, 4))), state_at(4))
    store.rollback(2, state_at(2))
    assert [e.block_number for e in store.events()] == [1, 2]
    assert store.follower_state(0) == state_at(2)


def test_store_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "matcher.sqlite"
    first = MatcherStore(path, IDENTITY)
    first.append(batch(rich_event(1, 0)), state_at(1))
    first.record_sent(SentTx(b"\x01" * 32, 0, 10, 2), [rid(1)])
    first.close()
    again = MatcherStore(path, dict(reversed(IDENTITY.items())))  # key order does not matter
    assert list(again.events()) == [rich_event(1, 0)]
    assert again.follower_state(0) == state_at(1)
    assert [r.nonce for r in again.inflight()] == [0]


def test_store_of_another_identity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "matcher.sqlite"
    MatcherStore(path, IDENTITY).close()
    with pytest.raises(ConfigError, match="another deployment, shard or key"):
        MatcherStore(path, {**IDENTITY, "markets": [0]})


def test_store_records_sent_transactions_by_nonce(store: MatcherStore) -> None:
    store.record_sent(SentTx(b"\x02" * 32, 8, 10, 2), [rid(3)])
    store.record_sent(SentTx(b"\x01" * 32, 7, 10, 2), [rid(1), rid(2)])
    assert [(r.nonce, r.hashes, r.request_ids) for r in store.inflight()] == [
        (7, [b"\x01" * 32], [rid(1), rid(2)]),
        (8, [b"\x02" * 32], [rid(3)]),
    ]


def test_store_a_fee_bump_adds_its_hash_to_the_same_nonce(store: MatcherStore) -> None:
    store.record_sent(SentTx(b"\x01" * 32, 7, 10, 2), [rid(1)])
    store.record_sent(SentTx(b"\x0b" * 32, 7, 12, 3), [rid(1)])
    (record,) = store.inflight()
    assert record.nonce == 7
    assert record.hashes == [b"\x01" * 32, b"\x0b" * 32]
    assert record.request_ids == [rid(1)]


def test_store_resolved_forgets_the_nonce(store: MatcherStore) -> None:
    store.record_sent(SentTx(b"\x01" * 32, 7, 10, 2), [rid(1)])
    store.record_sent(SentTx(b"\x02" * 32, 8, 10, 2), [rid(2)])
    store.resolved(7)
    store.resolved(99)
    assert [r.nonce for r in store.inflight()] == [8]


_scalars = st.one_of(
    st.binary(max_size=80),
    st.integers(min_value=-(2**255), max_value=2**256 - 1),
    st.text(max_size=24),
    st.booleans(),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@given(
    name=st.text(min_size=1, max_size=20),
    args=st.dictionaries(st.text(max_size=16), _values, max_size=8),
    block=st.integers(min_value=0, max_value=2**63 - 1),
    log_index=st.integers(min_value=0, max_value=2**31),
    bhash=st.binary(min_size=32, max_size=32),
    tx=st.binary(min_size=32, max_size=32),
)
def test_encode_then_decode_event_is_the_identity(
    name: str,
    args: dict[str, Any],
    block: int,
    log_index: int,
    bhash: bytes,
    tx: bytes,
) -> None:
    event = DecodedEvent(name, args, MARKETPLACE, block, bhash, tx, log_index)
    decoded = decode_event(block, log_index, encode_event(event))
    assert decoded == event
    assert repr(decoded) == repr(event)


# ======================================================================= feed


def test_market_created_records_its_penalty(chain: Chain) -> None:
    view = replay([*chain.events, chain.market(1, penalty=77)])
    assert view.book.markets() == [0, 1]
    assert [view.book.book_view(m).penalty for m in (0, 1)] == [PENALTY, 77]


def test_a_request_waits_until_a_generator_and_its_offer_exist(chain: Chain) -> None:
    view = replay([*chain.events, chain.request(1)])
    assert matched(view) == []
    feed(view, chain.generator(G1))
    assert matched(view) == []
    feed(view, chain.offer(G1))
    assert matched(view) == [(rid(1), G1)]


def test_a_match_carries_the_offer_and_the_market_penalty(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.generator(G1), chain.offer(G1, price=40, compute=3), chain.request(1)]
    )
    (match,) = view.book.match(NOW, 32)
    assert match == Match(rid(1), view.requests[rid(1)], G1, 40, 3, PENALTY, KEY)


def test_a_request_is_the_committed_fields_of_its_event(chain: Chain) -> None:
    event = chain.request(1, max_price=123, proof_time=900, expiry=NOW + 60, secret=b"s")
    view = replay(chain.events)
    request = view.requests[rid(1)]
    assert request == Request.new(
        market_id=0,
        requester=REQUESTER,
        refund_address=REFUND,
        max_price=123,
        proof_time=900,
        expiry=NOW + 60,
        public_inputs=event["public_inputs"],
        encrypted_secret=b"s",
    )
    contract_hash = keccak(
        abi_encode(
            ["(uint256,address,address,uint256,uint256,uint256,bytes32,bytes32)"],
            [(0, REQUESTER, REFUND, 123, 900, NOW + 60, keccak(b"inputs 1"), keccak(b"s"))],
        )
    )
    assert request.commitment() == contract_hash


def test_requests_are_matched_in_log_order(chain: Chain) -> None:
    chain.emit("Deposited", account=REQUESTER, amount=1)  # not the matcher's: ignored
    chain.generator(G1, compute=1)
    chain.offer(G1)
    chain.mine()
    chain.index = 999  # a late log of block 101 still comes before block 102
    chain.request(2)
    chain.mine()
    chain.request(1)
    view = replay(chain.events)
    assert matched(view) == [(rid(2), G1)]
    assert view.book.explain(rid(1), NOW).state == "parked"


def test_apply_counts_every_event_and_the_last_block(chain: Chain) -> None:
    chain.mine()
    chain.emit("Deposited", account=REQUESTER, amount=1)
    chain.request(1)
    view = replay(chain.events)
    assert view.events_seen == {"MarketCreated": 1, "Deposited": 1, "RequestCreated": 1}
    assert view.last_block == 101


def test_a_private_request_that_cannot_be_decrypted_never_matches(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.generator(G1), chain.offer(G1), chain.request(1, secret=b"s")]
    )
    assert view.undecryptable == {rid(1)}
    assert view.secrets == {rid(1): b"s"}
    assert rid(1) in view.requests
    assert matched(view) == []
    assert view.book.explain(rid(1), NOW).state == "unknown"


def test_a_private_request_goes_only_to_an_offer_with_a_key(chain: Chain) -> None:
    chain.generator(G1)
    chain.offer(G1, price=1, key=b"\x00" * 32)
    chain.generator(G2)
    chain.offer(G2, price=90)
    chain.request(1, secret=b"s")
    view = replay(chain.events, can_decrypt=lambda request_id, secret: secret == b"s")
    assert view.undecryptable == set()
    assert matched(view) == [(rid(1), G2)]


def test_a_cancelled_private_request_is_forgotten(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.request(1, secret=b"s"), chain.cancel("RequestCancelled", 1)]
    )
    assert view.undecryptable == set() and view.secrets == {} and view.requests == {}


@pytest.mark.parametrize("name", ["RequestCancelled", "RequestExpired"])
def test_a_closed_request_leaves_the_book_and_the_view(chain: Chain, name: str) -> None:
    chain.request(1)
    chain.cancel(name, 1)
    view = replay([*chain.events, chain.generator(G1), chain.offer(G1)])
    assert rid(1) not in view.requests
    assert matched(view) == []
    assert view.book.explain(rid(1), NOW).state == "closed"


def test_a_max_price_increase_wakes_a_priced_out_request(chain: Chain) -> None:
    view = replay(
        [
            *chain.events,
            chain.generator(G1),
            chain.offer(G1, price=50),
            chain.request(1, max_price=40),
        ]
    )
    assert matched(view) == []
    assert view.book.explain(rid(1), NOW).parked_on == "terms"
    feed(view, chain.raise_price(1, 60))
    assert view.requests[rid(1)].max_price == 60
    assert matched(view) == [(rid(1), G1)]


def test_task_assigned_makes_the_task_live(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.generator(G1), chain.offer(G1, compute=4), chain.request(1)]
    )
    feed(view, chain.assign(1, G1, deadline=NOW + 600))
    assert view.live[rid(1)].generator == G1 and view.live[rid(1)].deadline == NOW + 600
    assert view.book.explain(rid(1), NOW).state == "assigned"
    assert view.book.generator_view(G1, NOW).used_compute == 4
    assert matched(view) == []


def test_overdue_reports_a_live_task_past_its_deadline_once(chain: Chain) -> None:
    view = replay(
        [
            *chain.events,
            chain.generator(G1),
            chain.offer(G1),
            chain.request(1),
            chain.assign(1, G1, deadline=NOW + 600),
        ]
    )
    assert view.overdue(NOW + 600) == []  # the contract slashes when now > deadline
    assert view.overdue(NOW + 601) == [(rid(1), view.requests[rid(1)])]
    assert view.overdue(NOW + 10_000) == []


def test_overdue_lists_tasks_by_deadline(chain: Chain) -> None:
    events = [*chain.events, chain.generator(G1), chain.offer(G1)]
    for i, deadline in [(1, NOW + 30), (2, NOW + 10), (3, NOW + 20), (4, NOW + 99)]:
        events += [chain.request(i), chain.assign(i, G1, deadline=deadline)]
    view = replay(events)
    assert [task for task, _ in view.overdue(NOW + 50)] == [rid(2), rid(3), rid(1)]


def test_requeue_overdue_reports_the_task_again(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.generator(G1), chain.offer(G1), chain.request(1), chain.assign(1, G1)]
    )
    (found,) = view.overdue(NOW + 601)
    view.requeue_overdue(rid(1))
    assert view.overdue(NOW + 601) == [found]


def test_requeue_overdue_ignores_a_task_that_is_no_longer_live(chain: Chain) -> None:
    view = replay(
        [*chain.events, chain.generator(G1), chain.offer(G1), chain.request(1), chain.assign(1, G1)]
    )
    view.overdue(NOW + 601)
    feed(view, chain.finish("TaskSlashed", 1, G1))
    view.requeue_overdue(rid(1))
    assert view.overdue(NOW + 601) == []


@pytest.mark.parametrize("name", ["ProofSubmitted", "InvalidInputsProven", "TaskSlashed"])
def test_a_finished_task_leaves_live_and_requests(chain: Chain, name: str) -> None:
    view = replay(
        [
            *chain.events,
            chain.generator(G1),
            chain.offer(G1, compute=4),
            chain.request(1),
            chain.assign(1, G1),
        ]
    )
    feed(view, chain.finish(name, 1, G1))
    assert view.live == {} and view.requests == {}
    assert view.overdue(NOW + 10_000) == []
    assert view.book.explain(rid(1), NOW).state == "finished"
    standing = view.book.generator_view(G1, NOW)
    assert (standing.used_compute, standing.locked_stake, standing.outcomes) == (0, 0, 1)
    assert standing.successes == (0 if name == "TaskSlashed" else 1)


def test_a_discarded_task_request_is_matchable_again(chain: Chain) -> None:
    chain.generator(G1)
    chain.offer(G1, price=10)
    chain.generator(G2)
    chain.offer(G2, price=90)
    chain.request(1)
    view = replay(chain.events)
    assert matched(view) == [(rid(1), G1)]
    feed(view, chain.assign(1, G1), chain.finish("TaskDiscarded", 1, G1), chain.forfeit(G1))
    assert rid(1) not in view.live
    assert rid(1) in view.requests
    assert matched(view) == [(rid(1), G2)]


def test_a_discarded_request_is_not_offered_back_to_its_generator(chain: Chain) -> None:
    chain.generator(G1)
    chain.offer(G1)
    chain.request(1)
    chain.assign(1, G1)
    chain.finish("TaskDiscarded", 1, G1)
    view = replay(chain.events)
    assert matched(view) == []
    assert rule_of(view, 1, G1) == DISCARDED_BY


def test_forfeited_stake_leaves_the_generator_unable_to_take_work(chain: Chain) -> None:
    chain.generator(G1, stake=PENALTY)
    chain.offer(G1)
    chain.request(1)
    chain.assign(1, G1)
    chain.finish("TaskSlashed", 1, G1)
    chain.forfeit(G1, PENALTY)
    chain.request(2)
    view = replay(chain.events)
    assert view.book.generator_view(G1, NOW).stake == 0
    assert matched(view) == []
    assert rule_of(view, 2, G1) == NO_STAKE


def test_assign_skipped_returns_our_match_to_the_book(chain: Chain) -> None:
    view = replay([*chain.events, chain.generator(G1), chain.offer(G1), chain.request(1)])
    assert matched(view) == [(rid(1), G1)]
    assert view.book.pending_count() == 1
    feed(
        view,
        chain.emit(
            "AssignSkipped", request_id=rid(1), generator=G1, reason="registry: not enough compute"
        ),
    )
    assert view.book.pending_count() == 0 and view.book.open_count() == 1
    assert view.book.explain(rid(1), NOW).last_skip == "registry: not enough compute"


def test_a_shard_keeps_other_markets_requests_but_never_matches_them(chain: Chain) -> None:
    chain.generator(G1)
    chain.offer(G1)
    chain.request(1)
    view = feed(ChainView(OrderBook(markets=[1])), *chain.events)
    assert rid(1) in view.requests
    assert matched(view) == []


def busy_chain() -> Chain:
    """Three generators, two markets, requests arriving over blocks, tasks ending every way."""
    c = Chain()
    c.market(0)
    c.market(1, penalty=25)
    for g, price, compute in [(G1, 30, 2), (G2, 20, 3), (G3, 45, 1)]:
        c.generator(g, compute=6, stake=100)
        c.offer(g, 0, price=price, compute=compute)
        c.offer(g, 1, price=price + 5, proof_time=300, compute=compute)
    for i in range(1, 25):
        if i % 4 == 0:
            c.mine()
        c.request(i, market_id=i % 2, max_price=20 + 3 * i, proof_time=600 + 100 * (i % 3))
    c.mine()
    c.assign(1, G1, market_id=1)
    c.assign(2, G2)
    c.assign(3, G3, market_id=1)
    c.mine()
    c.finish("ProofSubmitted", 1, G1, market_id=1)
    c.finish("TaskDiscarded", 2, G2)
    c.forfeit(G2)
    c.finish("TaskSlashed", 3, G3, market_id=1)
    c.forfeit(G3, 25)
    c.raise_price(5, 500, market_id=1)
    c.cancel("RequestCancelled", 6)
    return c


def test_replaying_the_same_events_gives_the_same_matches() -> None:
    events = busy_chain().events
    first, second = replay(events), replay(events)
    ours = first.book.match(NOW, 32)
    assert len(ours) > 3
    assert ours == second.book.match(NOW, 32)
    assert first.requests == second.requests and first.live == second.live


def test_a_view_replayed_from_the_store_matches_the_live_one(store: MatcherStore) -> None:
    events = busy_chain().events
    for start in range(0, len(events), 7):
        part = events[start : start + 7]
        store.append(batch(*part), state_at(part[-1].block_number))
    assert list(store.events()) == events
    assert replay(list(store.events())).book.match(NOW, 32) == replay(events).book.match(NOW, 32)


# ============================================= what settlement needs (issue 17)

GEN_IMAGE, PVS_IMAGE = b"\x91" * 32, b"\x92" * 32
ENCLAVES = addr(0xE0)
MAX_AGE = 86_400


def enclave_view(*events: DecodedEvent) -> ChainView:
    return replay(
        list(events),
        engine=addr(0xAA),
        enclave_registry=ENCLAVES,
        key_max_age=MAX_AGE,
        can_decrypt=lambda request_id, secret: True,
    )


AUTHORITY = addr(0xA7)


def registered(
    c: Chain, key: bytes, image: bytes, attested_at: int, authority: str = AUTHORITY
) -> DecodedEvent:
    return c.emit(
        "EnclaveRegistered",
        signing_key=addr(0xE1),
        image_id=image,
        encryption_key=key,
        attested_at=attested_at,
        authority=authority,
    )


def test_a_private_key_lives_as_long_as_its_attestation_and_dies_with_its_image() -> None:
    c = Chain()
    c.market(1, generator_image=GEN_IMAGE)
    registered(c, KEY, GEN_IMAGE, NOW - 100)
    view = enclave_view(*c.events)
    assert view.key_valid_until(1, KEY) == NOW - 100 + MAX_AGE
    assert view.key_valid_until(1, b"\x08" * 32) == 0  # not a key of the image
    c.emit("ImageRevoked", market_id=1, image_id=GEN_IMAGE)
    assert enclave_view(*c.events).key_valid_until(1, KEY) == 0
    assert replay(c.events).key_valid_until(1, KEY) is None  # the dashboard does not check


def test_requests_that_need_a_revoked_image_leave_the_book() -> None:
    c = Chain()
    c.market(1, generator_image=GEN_IMAGE)
    c.market(2, verifier=ENCLAVES, pvs=PVS_IMAGE)  # attested proofs
    c.generator(G1)
    c.offer(G1, 1)
    c.offer(G1, 2)
    c.request(1, 1, secret=b"sealed")
    c.request(2, 2)
    view = enclave_view(*c.events)
    assert view.book.open_count() == 2
    feed(view, c.emit("ImageRevoked", market_id=2, image_id=PVS_IMAGE), c.request(3, 2))
    assert [request_id for request_id, _ in matched(view)] == [rid(1)]  # 2 left, 3 never came
    assert not view.settleable(view.requests[rid(3)])
    feed(view, c.emit("ImageRevoked", market_id=1, image_id=GEN_IMAGE))
    assert not view.settleable(view.requests[rid(1)])


def test_a_refreshed_key_is_offered_private_tasks_again() -> None:
    c = Chain()
    c.market(1, generator_image=GEN_IMAGE)
    c.generator(G1)
    c.offer(G1, 1, key=KEY)
    registered(c, KEY, GEN_IMAGE, NOW - MAX_AGE + 60)  # expires in a minute
    view = enclave_view(*c.events)
    feed(view, c.request(1, 1, secret=b"sealed"))
    (match,) = view.book.match(NOW, 32)
    view.book.assign_skipped(
        match.request_id, G1, "registry: offer key not live until the deadline"
    )
    assert view.book.match(NOW, 32) == []  # not offered to that key again...
    feed(view, registered(c, KEY, GEN_IMAGE, NOW))
    assert [m.generator for m in view.book.match(NOW, 32)] == [G1]  # ...until it refreshes


def test_the_keys_of_a_removed_authority_are_dead_at_once() -> None:
    """The assigner reads `key_valid_until` before it sends a private task to a key."""
    c = Chain()
    c.market(1, generator_image=GEN_IMAGE)
    registered(c, KEY, GEN_IMAGE, NOW - 100)
    other = b"\x0b" * 32
    registered(c, other, GEN_IMAGE, NOW - 100, authority=addr(0xA8))
    view = enclave_view(*c.events)
    feed(view, c.emit("AuthorityRemoved", authority=AUTHORITY))
    assert view.key_valid_until(1, KEY) == 0
    assert view.key_valid_until(1, other) == NOW - 100 + MAX_AGE  # vouched for by another


def test_another_engines_skips_leave_our_reservations(chain: Chain) -> None:
    chain.generator(G1)
    chain.offer(G1)
    chain.request(1)
    view = replay(chain.events, engine=addr(0xAA))
    assert len(view.book.match(NOW, 32)) == 1
    skip = dict(request_id=rid(1), generator=G1, reason="registry: not enough compute")
    feed(view, chain.emit("AssignSkipped", engine=addr(0xBB), **skip))
    assert view.book.pending_count() == 1  # still ours, still reserved
    feed(view, chain.emit("AssignSkipped", engine=addr(0xAA), **skip))
    assert view.book.pending_count() == 0
