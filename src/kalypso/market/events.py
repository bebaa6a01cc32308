"""Decode the contracts' raw logs into named events, strictly.

Logs come from an untrusted RPC endpoint: anything that does not decode exactly
(unknown topic, wrong topic count, malformed data) raises `MalformedLogError`,
which followers record and skip rather than crash on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from kalypso.errors import KalypsoError
from kalypso.market.types import Request


class MalformedLogError(KalypsoError, ValueError):
    code = "K-LOG-001"


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    args: Mapping[str, Any]
    address: str
    block_number: int
    block_hash: bytes
    transaction_hash: bytes
    log_index: int

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


def _abi_type(entry: Mapping[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return str(entry["type"])


def _normalize(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    return value


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    raise MalformedLogError(f"expected bytes, got {type(value).__name__}")


class EventDecoder:
    """Decodes the events of the given contract ABIs by their topic0."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]]) -> None:
        self._events: dict[bytes, dict[str, Any]] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") == "event":
                    self._events[event_abi_to_log_topic(entry)] = entry  # type: ignore[arg-type]

    @property
    def topics(self) -> list[bytes]:
        return list(self._events)

    def topic(self, name: str) -> bytes:
        """The topic0 of the event `name`."""
        return next(t for t, entry in self._events.items() if entry["name"] == name)

    def decode(self, log: Mapping[str, Any]) -> DecodedEvent:
        try:
            topics = [_as_bytes(t) for t in log["topics"]]
            data = _as_bytes(log["data"])
            coordinates = (
                to_checksum_address(log["address"]),
                int(log["blockNumber"]),
                _as_bytes(log["blockHash"]),
                _as_bytes(log["transactionHash"]),
                int(log["logIndex"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedLogError(f"log is missing or has bad fields: {exc}") from None
        if not topics or topics[0] not in self._events:
            raise MalformedLogError("unknown event topic")
        entry = self._events[topics[0]]
        indexed = [i for i in entry["inputs"] if i["indexed"]]
        plain = [i for i in entry["inputs"] if not i["indexed"]]
        if len(topics) != 1 + len(indexed):
            raise MalformedLogError(f"{entry['name']}: expected {1 + len(indexed)} topics")
        args: dict[str, Any] = {}
        try:
            for item, topic in zip(indexed, topics[1:], strict=True):
                (args[item["name"]],) = abi_decode([_abi_type(item)], topic, strict=True)
            values = abi_decode([_abi_type(i) for i in plain], data, strict=True)
        except Exception as exc:
            raise MalformedLogError(f"{entry['name']}: undecodable: {exc}") from None
        args.update(zip((i["name"] for i in plain), values, strict=True))
        for item in entry["inputs"]:
            args[item["name"]] = _normalize(item["type"], args[item["name"]])
        return DecodedEvent(entry["name"], args, *coordinates)


def created_request(event: DecodedEvent) -> Request:
    """The request a `RequestCreated` event commits to (before any price increase)."""
    return Request.new(
        market_id=event["market_id"],
        requester=event["requester"],
        refund_address=event["refund_address"],
        max_price=event["max_price"],
        proof_time=event["proof_time"],
        expiry=event["expiry"],
        public_inputs=event["public_inputs"],
        encrypted_secret=event["encrypted_secret"],
    )


def marketplace_decoder() -> EventDecoder:
    """A decoder for every event of the deployment's contracts: the marketplace, the
    market, generator and enclave registries."""
    from kalypso.contracts import artifact

    return EventDecoder(
        [
            artifact("ProofMarketplace").abi,
            artifact("MarketRegistry").abi,
            artifact("GeneratorRegistry").abi,
            artifact("EnclaveRegistry").abi,
        ]
    )
