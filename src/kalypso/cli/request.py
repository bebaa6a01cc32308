"""`kalypso request create|status|wait|cancel|slash`: ask for a proof and follow it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kalypso.cli.once import New, once
from kalypso.cli.options import (
    DEFAULT_RPC,
    EXIT_NO_PROOF,
    EXIT_TIMEOUT,
    DeploymentPath,
    Json,
    Keystore,
    PrivateKey,
    RpcUrl,
    client,
    console,
    print_json,
)
from kalypso.cli.output import HelpGroup, plain_console, styled
from kalypso.errors import ConfigError
from kalypso.sdk import (
    AskUser,
    Kalypso,
    MarketPercentile,
    Outcome,
    ProofRequest,
    Question,
    RawProof,
    RequestStatus,
    TypicalTime,
    Urgency,
    WaitTimeout,
)
from kalypso.sdk.pricing import Pricing, ProofTime

app = typer.Typer(help="Ask for proofs and follow them.", no_args_is_help=True, cls=HelpGroup)
#: questions and warnings: stderr, so that stdout stays machine-readable
prompts = plain_console(stderr=True)

RequestId = Annotated[str, typer.Argument(help="The request id (0x + 64 hex digits).")]
Timeout = Annotated[float, typer.Option(help="Seconds to wait before giving up (exit 3).")]
STRATEGIES = ("fixed", "percentile", "urgency", "ask")


def _ask(question: Question) -> str | None:
    """The interactive price or time prompt, on stderr (stdout may carry --json): the
    suggestion, its basis and the market."""
    stats, show = question.stats, question.show
    prompts.print(styled((question.market.name, "bold"), f" (market {question.market.id})"))
    prompts.print(
        f"  {stats.active_generators} generator(s) online, {stats.open_requests} open "
        f"request(s), {len(stats.prices)} recent price(s)"
    )
    if question.kind == "price":
        prompts.print(
            f"  suggested {show(question.suggestion.amount)}: {question.suggestion.basis}"
        )
        prompts.print(f"  your cap  {show(question.cap)}")
        answer = typer.prompt(
            "max price (e.g. 2.5 KAL; empty: the suggestion)", default="", err=True
        )
        fallback = f"{question.suggestion.amount} base"
    else:
        prompts.print(f"  suggested {question.suggestion.amount} s ({question.suggestion.basis})")
        prompts.print(f"  allowed   {question.floor} to {question.cap} s")
        answer = typer.prompt("proof time in seconds (empty: the suggestion)", default="", err=True)
        fallback = str(question.suggestion.amount)
    return str(answer).strip() or fallback


def _pricing(name: str) -> Pricing | None:
    if name not in STRATEGIES:
        raise ConfigError(f"--pricing is one of {', '.join(STRATEGIES)}, not {name!r}")
    return {
        "fixed": None,  # offer the cap
        "percentile": MarketPercentile(),
        "urgency": Urgency(),
        "ask": AskUser(_ask),
    }[name]


def _proof_time(text: str) -> ProofTime:
    if text == "typical":
        return TypicalTime()
    if text == "ask":
        return AskUser(_ask)
    try:
        return int(text.removesuffix("s"))
    except ValueError:
        raise ConfigError(f"--proof-time is seconds, 'typical' or 'ask', not {text!r}") from None


def _inputs(pairs: list[str], path: Path | None) -> dict[str, Any] | list[Any]:
    if path is not None and pairs:
        raise ConfigError("give --inputs FILE or --input NAME=VALUE, not both")
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict | list):
            raise ConfigError(f"{path} must hold an object of inputs by name, or a list of signals")
        return data
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--input takes NAME=VALUE, got {pair!r}")
        values[name.strip()] = value.strip()
    if not values:
        raise ConfigError("give the inputs: --input NAME=VALUE (repeatable) or --inputs FILE.json")
    return values


def create(
    market: Annotated[str, typer.Argument(help="The market, by name or id.")],
    max_price: Annotated[
        str, typer.Option(help='The hard cap, in token units ("2.5 KAL") or "N base".')
    ],
    input_pairs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="NAME=VALUE, repeatable.")
    ] = None,
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs", help="A JSON file of inputs by name.")
    ] = None,
    pricing: Annotated[
        str,
        typer.Option(
            help="fixed (offer the cap), percentile (recent prices), urgency (more for less "
            "time) or ask (show the quote and ask you)."
        ),
    ] = "fixed",
    proof_time: Annotated[
        str, typer.Option(help="Seconds the generator gets, 'typical' (3 x recent) or 'ask'.")
    ] = "typical",
    expires_in: Annotated[int, typer.Option(help="Seconds the request may wait unmatched.")] = 600,
    skip_preflight: Annotated[
        bool, typer.Option(help="Do not run the circuit on the inputs before paying.")
    ] = False,
    wasm: Annotated[
        Path | None,
        typer.Option(
            help="The market's witness generator for the preflight (its SHA-256 is checked "
            "against the market's metadata); default: a sample circuit's or a fetched one."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the proof and print it.")] = False,
    timeout: Timeout = 300,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
    new: New = False,
) -> None:
    """Ask for a proof: the inputs are checked against the circuit first (the preflight),
    private ones are sealed to the matching engine's enclave, the price is escrowed.

    You pay at most the max price, and only the generator's quote once the task is proven
    or its inputs shown invalid; everything comes back if the generator misses its
    deadline (anyone may slash it then), or if you cancel before it is assigned, or if it
    expires unassigned. Run it again after a crash and it reuses the same request id:
    it reports the request already placed instead of paying twice."""
    inputs = _inputs(input_pairs or [], inputs_file)
    strategy, seconds = _pricing(pricing), _proof_time(proof_time)
    args = {
        "market": market,
        "max_price": max_price,
        "inputs": inputs,
        "pricing": pricing,
        "proof_time": proof_time,
        "expires_in": expires_in,
    }

    def place(notes: dict[str, Any], note: Callable[[str, Any], None]) -> ProofRequest:
        salt = bytes.fromhex(notes["salt"]) if "salt" in notes else os.urandom(32)
        note("salt", salt.hex())  # a re-run sends the same request id, never a second one
        return k.request_proof(
            market,
            inputs,
            max_price=max_price,
            pricing=strategy,
            proof_time=seconds,
            expires_in=expires_in,
            skip_preflight=skip_preflight,
            wasm=wasm,
            salt=salt,
        )

    with client(rpc_url, deployment, private_key, keystore) as k:
        with console.status("checking the inputs and placing the request…"):
            placed = once(k, "request create", args, function="create_request", new=new, run=place)
        if placed is None:
            return
        request = placed
        if not wait:
            if as_json:
                print_json(_status_json(k, request.status()))
            else:
                quote = request.quote
                console.print(
                    f"request 0x{request.id.hex()} placed in market {request.market.id} "
                    f"({request.market.name})"
                )
                basis = f" ({quote.basis})" if quote and quote.basis else ""
                console.print(f"  max price {k.show(request.max_price)}{basis}")
                console.print(
                    "  you pay only the generator's quote once proven; all of it comes back "
                    "if the generator misses its deadline"
                )
                console.print(f"  follow it: kalypso request wait 0x{request.id.hex()}")
            return
        _wait(k, request, timeout, as_json)


def status(
    request_id: RequestId,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    as_json: Json = False,
) -> None:
    """Where a request stands: open, assigned (to whom, until when), or how it ended."""
    with client(rpc_url, deployment, None, None) as k:
        current = k.request(request_id).status()
        if as_json:
            print_json(_status_json(k, current))
            return
        console.print(
            styled(f"request 0x{current.request_id.hex()}: ", (current.state.name, "bold"))
        )
        console.print(f"  market {current.market_id}, max price {k.show(current.max_price)}")
        if current.generator:
            console.print(
                f"  generator {current.generator} at {k.show(current.price)}, "
                f"deadline {current.deadline} (chain time now {current.now})"
            )
        elif current.expired:
            console.print("  expired unassigned: `kalypso request cancel` refunds it")
        else:
            console.print(f"  expires at {current.expiry} (chain time now {current.now})")


def wait(
    request_id: RequestId,
    timeout: Timeout = 300,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
) -> None:
    """Wait for a request's proof and print it (snarkjs JSON); refunds an expired request
    and slashes a missed deadline when your key is given."""
    with client(rpc_url, deployment, private_key, keystore) as k:
        _wait(
            k,
            k.request(request_id),
            timeout,
            as_json,
            settle=getattr(k.aio, "account", None) is not None,
        )


def cancel(
    request_id: RequestId,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
    new: New = False,
) -> None:
    """Cancel an unassigned request (yours at any time, anyone's once expired): refunded."""
    with client(rpc_url, deployment, private_key, keystore) as k:
        with console.status("cancelling…"):
            outcome = once(
                k,
                "request cancel",
                {"request": request_id},
                function=("cancel_request", "cancel_expired"),
                new=new,
                run=lambda *_: k.request(request_id).cancel(),
            )
        if outcome is not None:
            _print_outcome(k, outcome, as_json)


def slash(
    request_id: RequestId,
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    keystore: Keystore = None,
    private_key: PrivateKey = None,
    as_json: Json = False,
    new: New = False,
) -> None:
    """Slash the generator of a task past its deadline: the requester is refunded in full,
    you get the bounty."""
    with client(rpc_url, deployment, private_key, keystore) as k:
        with console.status("slashing…"):
            outcome = once(
                k,
                "request slash",
                {"request": request_id},
                function="slash",
                new=new,
                run=lambda *_: k.slash(request_id),
            )
        if outcome is not None:
            _print_outcome(k, outcome, as_json)


def _wait(
    k: Kalypso, request: ProofRequest, timeout: float, as_json: bool, *, settle: bool = True
) -> None:
    try:
        with console.status(f"waiting for the proof of 0x{request.id.hex()[:16]}…"):
            outcome = request.wait(timeout, slash=settle, refund=settle)
    except WaitTimeout as exc:
        prompts.print(str(exc), style="yellow")
        raise typer.Exit(EXIT_TIMEOUT) from None
    _print_outcome(k, outcome, as_json)
    if not outcome.fulfilled:
        raise typer.Exit(EXIT_NO_PROOF)


def _print_outcome(k: Kalypso, outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print_json(_outcome_json(outcome))
        return
    # prose to stderr, the proof alone to stdout: `… --wait > proof.json` is JSON
    prompts.print(outcome.describe())
    if outcome.payment:
        prompts.print(f"  generator paid {k.show(outcome.payment)}")
    if outcome.refund:
        prompts.print(f"  refunded {k.show(outcome.refund)} to the internal balance")
    if outcome.proof is not None:
        typer.echo(json.dumps(_proof_json(outcome), indent=2))


def _proof_json(outcome: Outcome) -> dict[str, Any]:
    proof = outcome.proof
    if proof is None:
        return {}
    if isinstance(proof, RawProof):
        return {"proof": "0x" + proof.proof.hex(), "public_inputs": "0x" + proof.inputs.hex()}
    body, public = proof.to_snarkjs()
    return {"proof": body, "public": public, "calldata": "0x" + proof.calldata().hex()}


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "request_id": "0x" + outcome.request_id.hex(),
        "state": outcome.state.name,
        "generator": outcome.generator,
        "payment": outcome.payment,
        "refund": outcome.refund,
        "penalty": outcome.penalty,
        "transaction": "0x" + outcome.transaction.hex() if outcome.transaction else None,
        **_proof_json(outcome),
    }


def _status_json(k: Kalypso, current: RequestStatus) -> dict[str, Any]:
    return {
        "request_id": "0x" + current.request_id.hex(),
        "state": current.state.name,
        "market_id": current.market_id,
        "max_price": current.max_price,
        "max_price_units": k.show(current.max_price),
        "proof_time": current.proof_time,
        "expiry": current.expiry,
        "expired": current.expired,
        "generator": current.generator,
        "price": current.price,
        "deadline": current.deadline,
        "now": current.now,
    }


app.command("create")(create)
app.command("status")(status)
app.command("wait")(wait)
app.command("cancel")(cancel)
app.command("slash")(slash)
