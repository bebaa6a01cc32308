"""Commands that sign run at most once per action, even when run again after a crash
(`kalypso.chain.actions` keeps the record; this is the CLI's glue)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypeVar

import typer
from web3.types import TxReceipt

from kalypso.chain.actions import Action, ActionLog, action_key, default_path
from kalypso.errors import KalypsoError
from kalypso.market.events import marketplace_decoder

T = TypeVar("T")


class Signer(Protocol):
    """What `once` needs of a client: the SDK's `Kalypso`, or the owner's `AdminClient`."""

    @property
    def chain_id(self) -> int: ...

    @property
    def address(self) -> str: ...

    def record(self, on_sent: Callable[[bytes, int, str], None] | None) -> None: ...

    def landed(self, hashes: list[bytes]) -> TxReceipt | None: ...


New = Annotated[
    bool,
    typer.Option(
        "--new",
        help="Send a new transaction even if an earlier run of this very command was cut "
        "short after sending its own (by default that one is reported instead).",
    ),
]


def already_done(receipt: TxReceipt) -> str:
    """The line a re-run prints when an earlier run's transaction was mined."""
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    decoder = marketplace_decoder()
    requests, markets = decoder.topic("RequestCreated"), decoder.topic("MarketCreated")
    placed = [
        f" (request 0x{bytes(log['topics'][1]).hex()})"
        if bytes(log["topics"][0]) == requests
        else f" (market {int.from_bytes(bytes(log['topics'][1]), 'big')})"
        for log in receipt["logs"]
        if len(log["topics"]) > 1 and bytes(log["topics"][0]) in (requests, markets)
    ]
    return (
        f"already done: an earlier run of this command sent {tx}{''.join(placed)}, "
        f"mined in block {receipt['blockNumber']}; nothing was sent again "
        "(--new sends another)"
    )


def once(
    k: Signer,
    command: str,
    args: dict[str, Any],
    *,
    function: str | tuple[str, ...],
    new: bool,
    run: Callable[[dict[str, Any], Callable[[str, Any], None]], T],
) -> T | None:
    """`run(notes, note)` as the action (`command`, `args`) of `k`'s account, whose own
    transaction calls `function`. When an unfinished earlier run's `function`
    transaction landed, it prints so and returns None instead; `notes` are what the
    earlier run recorded (`note(name, value)` records), so a re-run reuses them. An
    error after that transaction was mined says so.
    """
    log = ActionLog(default_path(k.chain_id, k.address))
    key = action_key(command, args)
    try:
        earlier = None if new else log.unfinished(key)
        if earlier is not None:
            receipt = k.landed([s.hash for s in earlier.of(_names(function))])
            if receipt is not None and receipt["status"] == 1:  # a revert did nothing
                log.finish(key)
                typer.echo(already_done(receipt))
                return None
        notes = earlier.notes if earlier is not None else {}
        log.begin(key, command, args)
        for name, value in notes.items():
            log.note(key, name, value)
        k.record(lambda tx, nonce, fn: log.sent(key, tx, nonce, fn))
        try:
            result = run(notes, lambda name, value: log.note(key, name, value))
        except KalypsoError as exc:
            action = log.unfinished(key)
            if action is None or not action.sent:
                log.finish(key)  # nothing was sent: nothing to find on a re-run
                raise
            raise _after_mined(exc, k, action, function) from None
        finally:
            k.record(None)
        log.finish(key)
        return result
    finally:
        log.close()


def _after_mined(
    exc: KalypsoError, k: Signer, action: Action | None, function: str | tuple[str, ...]
) -> KalypsoError:
    """`exc`, saying so when the action's own transaction was mined before it."""
    try:
        mined = k.landed([s.hash for s in action.of(_names(function))]) if action else None
    except KalypsoError:
        return exc  # the chain is not answering: the re-run will look again
    if mined is None or mined["status"] != 1:  # not mined, or reverted: nothing was done
        return exc
    tx = "0x" + bytes(mined["transactionHash"]).hex()
    exc.args = (
        f"{exc.args[0] if exc.args else exc} (after its transaction {tx} was mined in "
        f"block {mined['blockNumber']}: do not run the command again)",
    )
    return exc


def _names(function: str | tuple[str, ...]) -> tuple[str, ...]:
    return (function,) if isinstance(function, str) else function
