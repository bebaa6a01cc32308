"""What each page shows, as plain data: the HTML templates and the JSON API render the
same models, so a page and its `/api/...` twin never disagree."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from eth_utils import is_address, keccak, to_checksum_address

from kalypso.amounts import format_amount
from kalypso.dashboard import plots
from kalypso.dashboard.indexer import Indexer
from kalypso.dashboard.store import ASSIGNED, OPEN, EventRow
from kalypso.errors import AmbiguousMarketError, ConfigError, KalypsoError
from kalypso.market import decode_signals
from kalypso.market.names import resolve_market
from kalypso.matching.views import GeneratorView, OfferView
from kalypso.sdk.markets import Market, metadata_names, percentile, with_name_notes
from kalypso.sdk.outcome import RawProof, decode_proof

#: How many points the plots and lists take (the newest).
PLOT_POINTS = 500
LIST_ROWS = 50


class NotFound(KalypsoError, LookupError):
    """A page of something this deployment has never seen; the message says what."""

    code = "K-DASH-404"


@dataclass(frozen=True)
class Money:
    """An amount in base units and as the token shows it."""

    base: int
    shown: str


@dataclass(frozen=True)
class FeedItem:
    seq: int
    time: int
    block: int
    tx: str
    name: str
    text: str
    #: the request it is about, if any
    subject: str | None
    market_id: int | None
    account: str | None


@dataclass(frozen=True)
class MarketSummary:
    id: int
    name: str
    circuit: str | None
    verifier_kind: str
    generators: int
    open: int
    assigned: int
    requests: int
    last_price: Money | None
    #: why `name` does not address this market (`kalypso.market.names`)
    name_note: str | None = None


@dataclass(frozen=True)
class MarketPage:
    summary: MarketSummary
    verifier: str
    input_verifier: str | None
    invalid_inputs_path: str
    penalty: Money
    images: dict[str, str]
    created_at: int
    tx: str
    states: dict[str, int]
    offers: list[OfferView]
    price_p50: Money | None
    price_p90: Money | None
    typical_proof_time: int | None
    price_plot: str
    proof_time_plot: str
    recent: list[dict[str, Any]]


@dataclass(frozen=True)
class RequestPage:
    id: str
    market_id: int
    market_name: str
    state: str
    requester: str
    refund_address: str
    private: bool
    public_signals: list[str]
    max_price: Money
    proof_time: int
    expiry: int
    created_at: int
    generator: str | None
    price: Money | None
    deadline: int | None
    payment: Money | None
    refund: Money | None
    penalty: Money | None
    #: the deadline passed with no proof: anyone may slash now
    overdue: bool
    timeline: list[FeedItem]
    proof: dict[str, Any] | None = None


@dataclass(frozen=True)
class GeneratorPage:
    address: str
    reward_address: str
    registered_at: int
    standing: GeneratorView
    #: tasks by outcome, "tasks" (all) and "earned" (payments, base units)
    totals: dict[str, int]
    earned: Money
    missed_deadlines: int
    reliability: str
    tasks: list[dict[str, Any]]


@dataclass(frozen=True)
class AccountPage:
    address: str
    requests: list[dict[str, Any]]
    events: list[FeedItem] = field(default_factory=list)


class Pages:
    """The page models of one indexer's deployment."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.store = indexer.store
        d = indexer.deployment
        self.decimals, self.symbol = d.token_decimals, d.token_symbol
        self._markets: dict[int, Market] = {}

    def money(self, base: int | str | None) -> Money | None:
        return None if base is None else self._money(base)

    def _money(self, base: int | str) -> Money:
        return Money(int(base), self.show(base))

    # ---- markets

    def sdk_market(self, row: sqlite3.Row) -> Market:
        """The market as the SDK reads it (name, proof system, input schema)."""
        market = self._markets.get(row["id"])
        if market is None:
            terms = (
                row["creator"],
                row["verifier"],
                row["input_verifier"],
                int(row["penalty"]),
                bytes.fromhex(row["generator_image"][2:]),
                bytes.fromhex(row["input_verification_image"][2:]),
                bytes.fromhex(row["proof_verification_image"][2:]),
                None,
                keccak(bytes(row["metadata"])),
                int(row["request_kinds"]),
            )
            names = self.indexer.deployment.markets
            market = Market.from_chain(row["id"], terms, bytes(row["metadata"]), names)
            self._markets[row["id"]] = market
        return market

    def _verifier_kind(self, market: Market) -> str:
        if market.proof_system == "groth16":
            return "Groth16, verified on chain"
        if market.proof_system == "plonk":
            return "PLONK, attested by its Proof Verification Image"
        if market.verifier == self.indexer.deployment.enclave_registry:
            return "attested by its Proof Verification Image"
        return "custom verifier"

    def market_summaries(self) -> list[MarketSummary]:
        counts, notes = self.store.state_counts(), self._name_notes()
        return [
            self._summary(row, counts.get(row["id"], {}), self.store.prices(row["id"], 1), notes)
            for row in self.store.markets()
        ]

    def _name_notes(self) -> dict[int, str]:
        """Why a market's name does not address it, by id (`kalypso.market.names`)."""
        markets = [self.sdk_market(r) for r in self.store.markets()]
        marked = with_name_notes(markets, self.indexer.deployment.markets)
        return {m.id: m.name_note for m in marked if m.name_note}

    def _summary(
        self,
        row: sqlite3.Row,
        states: dict[str, int],
        prices: list[tuple[int, int]],
        notes: dict[int, str],
    ) -> MarketSummary:
        """`prices`: the market's latest (time, price) pairs, oldest first."""
        market = self.sdk_market(row)
        offers = self.indexer.view.book.offers(market.id)
        return MarketSummary(
            id=market.id,
            name=market.name,
            circuit=market.circuit,
            verifier_kind=self._verifier_kind(market),
            generators=len(offers),
            open=states.get(OPEN, 0),
            assigned=states.get(ASSIGNED, 0),
            requests=sum(states.values()),
            last_price=self.money(prices[-1][1]) if prices else None,
            name_note=notes.get(market.id),
        )

    def market_row(self, key: str | int) -> sqlite3.Row:
        """A market by id or by name."""
        text = str(key).strip()
        number = text.isascii() and text.isdecimal()
        row = self.store.market(int(text)) if number else None
        if row is None and not number:
            carried = metadata_names([self.sdk_market(r) for r in self.store.markets()])
            try:
                found = resolve_market(text, self.indexer.deployment.markets, carried)
            except AmbiguousMarketError as exc:
                raise NotFound(exc.args[0]) from None
            except ConfigError:
                found = None
            row = self.store.market(found) if found is not None else None
        if row is None:
            raise NotFound(f"there is no market {text!r} on this deployment")
        return row

    def market(self, key: str | int) -> MarketPage:
        row = self.market_row(key)
        market = self.sdk_market(row)
        states = self.store.state_counts().get(market.id, {})
        prices = self.store.prices(market.id, PLOT_POINTS)
        times = self.store.proof_times(market.id, PLOT_POINTS)
        values = [p for _, p in prices]
        if market.input_verifier:
            path = f"its input verifier contract {market.input_verifier}"
        elif any(market.input_verification_image) or any(market.generator_image):
            path = "an attestation of its enclave images"
        else:
            path = "none: every input is declared provable"
        return MarketPage(
            summary=self._summary(row, states, prices, self._name_notes()),
            verifier=market.verifier,
            input_verifier=market.input_verifier,
            invalid_inputs_path=path,
            penalty=self._money(market.slashing_penalty),
            images={
                "Generator Image": row["generator_image"],
                "Input Verification Image": row["input_verification_image"],
                "Proof Verification Image": row["proof_verification_image"],
            },
            created_at=row["created_at"],
            tx=row["tx"],
            states=states,
            offers=list(self.indexer.view.book.offers(market.id)),
            price_p50=self.money(percentile(values, 0.5)),
            price_p90=self.money(percentile(values, 0.9)),
            typical_proof_time=int(statistics.median(times)) if times else None,
            price_plot=plots.price_over_time(prices, self.show),
            proof_time_plot=plots.histogram(times),
            recent=[self._request_row(r) for r in self.store.requests(market_id=market.id)],
        )

    # ---- requests

    def _request_row(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "market_id": row["market_id"],
            "state": row["state"],
            "requester": row["requester"],
            "generator": row["generator"],
            "max_price": self._money(row["max_price"]),
            "price": self.money(row["price"]),
            "payment": self.money(row["payment"]),
            "created_at": row["created_at"],
        }

    def request(self, request_id: str) -> RequestPage:
        key = request_id.strip().lower()
        if not key.startswith("0x"):
            key = "0x" + key
        row = self.store.request(key)
        if row is None:
            raise NotFound(f"there is no request or task {request_id!r} on this deployment")
        market = self.sdk_market(self.market_row(row["market_id"]))
        events = self.store.timeline(key)
        proof = next((e for e in events if e.name == "ProofSubmitted"), None)
        deadline = row["deadline"]
        now = self.indexer.head_time
        return RequestPage(
            id=key,
            market_id=row["market_id"],
            market_name=market.name,
            state=row["state"],
            requester=row["requester"],
            refund_address=row["refund_address"],
            private=bool(row["private"]),
            public_signals=_signals(bytes(row["public_inputs"])),
            max_price=self._money(row["max_price"]),
            proof_time=row["proof_time"],
            expiry=row["expiry"],
            created_at=row["created_at"],
            generator=row["generator"],
            price=self.money(row["price"]),
            deadline=deadline,
            payment=self.money(row["payment"]),
            refund=self.money(row["refund"]),
            penalty=self.money(row["penalty"]),
            overdue=row["state"] == ASSIGNED and deadline is not None and now > deadline,
            timeline=[self.feed_item(e) for e in events],
            proof=None
            if proof is None
            else _decoded(market, proof.event["proof"], bytes(row["public_inputs"])),
        )

    # ---- generators and accounts

    def address(self, text: str) -> str:
        value = text.strip()
        if not is_address(value):
            raise NotFound(f"{text!r} is not an address (0x and 40 hex digits)")
        return str(to_checksum_address(value))

    def generator(self, text: str) -> GeneratorPage:
        address = self.address(text)
        row = self.store.generator(address)
        if row is None:
            raise NotFound(f"{address} has never registered as a generator on this deployment")
        standing = self.indexer.view.book.generator_view(address, self.indexer.head_time)
        totals = self.store.generator_totals(address)
        outcomes = standing.outcomes
        reliability = (
            f"{standing.successes} of the last {standing.window} outcomes were successes"
            f" ({outcomes} seen; missing ones count as failures)"
        )
        return GeneratorPage(
            address=address,
            reward_address=row["reward_address"],
            registered_at=row["registered_at"],
            standing=standing,
            totals=totals,
            earned=self._money(totals["earned"]),
            missed_deadlines=totals.get("slashed", 0),
            reliability=reliability,
            tasks=[self._request_row(r) for r in self.store.requests(generator=address)],
        )

    def account(self, text: str) -> AccountPage:
        address = self.address(text)
        requests = self.store.requests(requester=address)
        events = self.store.recent_events(LIST_ROWS, account=address)
        if not requests and not events:
            raise NotFound(f"{address} has no request or event on this deployment")
        return AccountPage(
            address,
            [self._request_row(r) for r in requests],
            [self.feed_item(e) for e in events],
        )

    def search(self, query: str) -> str:
        """The page `query` (a request or task id, an address, a market id or name) is."""
        q = query.strip()
        if not q:
            raise NotFound("search for a request or task id, an address, or a market")
        hex_part = q.lower().removeprefix("0x")
        if len(hex_part) == 64:
            self.request(q)
            return f"/requests/0x{hex_part}"
        if is_address(q):
            address = self.address(q)
            if self.store.generator(address) is not None:
                return f"/generators/{address}"
            self.account(address)
            return f"/accounts/{address}"
        return f"/markets/{self.market_row(q)['id']}"

    # ---- the feed

    def feed(
        self,
        after: int = -1,
        limit: int = LIST_ROWS,
        *,
        subject: str | None = None,
        account: str | None = None,
        market_id: int | None = None,
    ) -> list[FeedItem]:
        """The newest events after `after`, of one request, account or market if given."""
        rows = self.store.recent_events(
            limit, after, subject=subject, account=account, market_id=market_id
        )
        return [self.feed_item(e) for e in rows]

    def feed_item(self, row: EventRow) -> FeedItem:
        e = row.event
        return FeedItem(
            seq=row.seq,
            time=row.time,
            block=e.block_number,
            tx="0x" + e.transaction_hash.hex(),
            name=e.name,
            text=self.describe(row),
            subject=row.subject,
            market_id=e.args.get("market_id"),
            account=row.account,
        )

    def describe(self, row: EventRow) -> str:
        """One line on what an event did."""
        e, show = row.event, self.show
        match e.name:
            case "RequestCreated":
                return (
                    f"request created in market {e['market_id']}, max price {show(e['max_price'])}"
                )
            case "MaxPriceIncreased":
                return f"max price raised to {show(e['max_price'])}"
            case "TaskAssigned":
                deadline = time.strftime("%H:%M:%S UTC", time.gmtime(e["deadline"]))
                return f"assigned to {e['generator']} at {show(e['price'])}, deadline {deadline}"
            case "AssignSkipped":
                return f"assignment to {e['generator']} skipped: {e['reason']}"
            case "ProofSubmitted":
                return f"proof submitted: paid {show(e['payment'])}, refunded {show(e['refund'])}"
            case "InvalidInputsProven":
                return (
                    f"inputs shown unprovable: paid {show(e['payment'])}, "
                    f"refunded {show(e['refund'])}"
                )
            case "TaskDiscarded":
                return f"{e['generator']} gave the task back (penalty {show(e['penalty'])})"
            case "TaskSlashed":
                return (
                    f"{e['generator']} missed its deadline: slashed {show(e['penalty'])} by "
                    f"{e['slasher']}, refunded {show(e['refund'])}"
                )
            case "RequestCancelled":
                return f"cancelled, refunded {show(e['refund'])}"
            case "RequestExpired":
                return f"expired unassigned, refunded {show(e['refund'])}"
            case "MarketCreated":
                return f"market {e['market_id']} created by {e['creator']}"
            case "GeneratorRegistered":
                return f"generator {e['generator']} registered with {show(e['stake'])} staked"
            case "OfferSet":
                return (
                    f"{e['generator']} offers {show(e['price'])} within {e['proof_time']} s "
                    f"in market {e['market_id']}"
                )
            case "Deposited":
                return f"{e['account']} deposited {show(e['amount'])}"
            case "Withdrawn":
                return f"{e['account']} withdrew {show(e['amount'])}"
            case "StakeAdded":
                return f"{e['generator']} staked {show(e['amount'])} more"
            case "StakeRemoved":
                return f"{e['generator']} unstaked {show(e['amount'])}"
            case "StakeForfeited":
                return f"{e['generator']} forfeited {show(e['amount'])} of its stake"
            case "MarketLeft":
                return f"{e['generator']} left market {e['market_id']}"
            case "ComputeChanged":
                return f"{e['generator']} declares compute {e['declared_compute']}"
            case "ExitRequested":
                return f"{e['generator']} asked to exit"
            case "GeneratorWithdrawn":
                return f"{e['generator']} exited with {show(e['amount'])}"
        return ", ".join(
            f"{k} {v}" for k, v in e.args.items() if isinstance(v, int | str) and k != "metadata"
        )

    def show(self, value: int | str) -> str:
        """An amount in base units as the token shows it ("1.5 KAL")."""
        return format_amount(int(value), self.decimals, self.symbol)


def _signals(data: bytes) -> list[str]:
    try:
        return [str(v) for v in decode_signals(data)]
    except KalypsoError:
        return ["0x" + data.hex()] if data else []


def _decoded(market: Market, proof: bytes, public_inputs: bytes) -> dict[str, Any]:
    """The proof as snarkjs writes it, or its raw bytes when it does not decode."""
    try:
        decoded = decode_proof(market, proof, public_inputs)
    except Exception as exc:  # bytes the market's verifier accepted but we cannot read
        note = f"not decodable as {market.proof_system}: {exc}"
        return {"raw": "0x" + proof.hex(), "note": note}
    if isinstance(decoded, RawProof):
        return {
            "raw": "0x" + proof.hex(),
            "public_signals": [str(s) for s in decoded.public_signals],
        }
    body, public = decoded.to_snarkjs()
    return {"system": market.proof_system, "proof": body, "public_signals": public}


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2)
