"""Event decoding: real logs decode to named events; anything malformed raises, never crashes."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kalypso.market import Request
from kalypso.market.events import EventDecoder, MalformedLogError, marketplace_decoder
from tests.unit.helpers import UNIT, Kal

DECODER = marketplace_decoder()


def raw_logs(contract: Any) -> list[dict[str, Any]]:
    """The last call's logs in JSON-RPC shape (what a follower reads from eth_getLogs)."""
    computation = contract._computation
    out = []
    for index, (_, address, topics, data) in enumerate(computation.get_raw_log_entries()):
        out.append(
            {
                "address": "0x" + bytes(address).hex(),
                "topics": ["0x" + t.to_bytes(32, "big").hex() for t in topics],
                "data": "0x" + data.hex(),
                "blockNumber": 1,
                "blockHash": "0x" + "11" * 32,
                "transactionHash": "0x" + "22" * 32,
                "logIndex": index,
            }
        )
    return out


def test_request_created_decodes_with_every_field(kal: Kal, market_id: int, alice: str) -> None:
    rid, req, inputs = kal.request(alice, market_id, signals=[5], max_price=3 * UNIT)
    own = [
        raw for raw in raw_logs(kal.market) if raw["address"].lower() == kal.market.address.lower()
    ]
    (log,) = [e for e in map(DECODER.decode, own) if e.name == "RequestCreated"]
    assert log["request_id"] == rid and log["market_id"] == market_id
    assert log["requester"] == alice and log["public_inputs"] == inputs
    fields = Request.new(
        market_id=market_id,
        requester=alice,
        refund_address=log["refund_address"],
        max_price=log["max_price"],
        proof_time=log["proof_time"],
        expiry=log["expiry"],
        public_inputs=log["public_inputs"],
        encrypted_secret=log["encrypted_secret"],
    )
    assert fields == req


def test_unknown_topic_is_malformed() -> None:
    log = {
        "address": "0x" + "00" * 20,
        "topics": ["0x" + "ab" * 32],
        "data": "0x",
        "blockNumber": 1,
        "blockHash": "0x" + "11" * 32,
        "transactionHash": "0x" + "22" * 32,
        "logIndex": 0,
    }
    try:
        DECODER.decode(log)
    except MalformedLogError as exc:
        assert "unknown event" in str(exc)
    else:
        raise AssertionError("decoded an unknown topic")


def test_decoder_with_no_abis_knows_nothing() -> None:
    assert EventDecoder([]).topics == []


@given(
    topic_index=st.integers(min_value=0, max_value=200),
    extra_topics=st.lists(st.binary(min_size=0, max_size=40), max_size=4),
    data=st.binary(max_size=300),
)
def test_garbage_logs_raise_malformed_and_nothing_else(
    topic_index: int, extra_topics: list[bytes], data: bytes
) -> None:
    topics = DECODER.topics
    log = {
        "address": "0x" + "01" * 20,
        "topics": [topics[topic_index % len(topics)], *extra_topics],
        "data": data,
        "blockNumber": 7,
        "blockHash": b"\x11" * 32,
        "transactionHash": b"\x22" * 32,
        "logIndex": 0,
    }
    try:
        event = DECODER.decode(log)
    except MalformedLogError:
        return
    assert event.block_number == 7


@given(st.dictionaries(st.sampled_from(["topics", "data", "address", "blockNumber"]), st.none()))
def test_missing_or_null_fields_are_malformed(log: dict[str, Any]) -> None:
    try:
        DECODER.decode(log)
    except MalformedLogError:
        pass
    else:
        raise AssertionError("decoded a log without its fields")
