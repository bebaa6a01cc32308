"""`kalypso market list|show`: the markets as an app sees them, read through the SDK."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from kalypso.cli.options import DEFAULT_RPC, DeploymentPath, Json, RpcUrl, client, print_json
from kalypso.cli.output import plain_console, styled
from kalypso.market.groth16 import NO_IMAGE
from kalypso.sdk import Kalypso, Market, MarketStats

console = plain_console()


def list_markets(
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    as_json: Json = False,
) -> None:
    """Every market, with its live statistics."""
    with client(rpc_url, deployment, None, None) as k:
        with console.status("reading the markets…"):
            rows = [(m, k.stats(m)) for m in k.markets()]
        if as_json:
            print_json([_market_json(k, m, s) for m, s in rows])
            return
        table = Table(title="markets")
        for column in ("id", "name", "proofs", "private", "gens", "open", "p50", "time"):
            numeric = column in ("id", "gens", "open", "p50", "time")
            table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
        for m, s in rows:
            table.add_row(
                str(m.id),
                styled(m.name, (f" ({m.name_note})" if m.name_note else "", "yellow")),
                m.proof_system + ("*" if m.proof_verification_image != NO_IMAGE else ""),
                ", ".join(m.private_inputs) or "-",
                str(s.active_generators),
                str(s.open_requests),
                k.show(s.price_p50) if s.price_p50 is not None else "-",
                f"{s.typical_proof_time} s" if s.typical_proof_time is not None else "-",
            )
        console.print(table)
        console.print(
            "gens: live generator offers; p50: median recent price; time: typical "
            "proof time; *: verified by a Proof Verification Image"
        )
        if any(m.name_note for m, _ in rows):
            console.print(
                "a contested name addresses the market the deployment file records, else "
                "none: address such a market by id"
            )


def show(
    market: Annotated[str, typer.Argument(help="The market, by name or id.")],
    rpc_url: RpcUrl = DEFAULT_RPC,
    deployment: DeploymentPath = None,
    as_json: Json = False,
) -> None:
    """One market: its terms, its circuit's inputs and its statistics."""
    with client(rpc_url, deployment, None, None) as k:
        m = k.market(market)
        s = k.stats(m)
        data = _market_json(k, m, s)
        if as_json:
            print_json(data)
            return
        console.print(styled((m.name, "bold"), f" (market {m.id})"))
        for key in (
            "verifier",
            "proof_system",
            "slashing_penalty_units",
            "input_verifier",
            "generator_image",
            "input_verification_image",
            "proof_verification_image",
        ):
            if data[key] is not None:
                console.print(f"  {key.removesuffix('_units').replace('_', ' '):<26} {data[key]}")
        console.print(f"  requests                   {data['requests']}")
        console.print(f"  inputs                     {data['inputs'] or 'raw public signals'}")
        console.print(f"  public signals             {', '.join(m.public_signals) or '—'}")
        console.print(f"  open requests              {s.open_requests}")
        for offer in s.offers:
            console.print(
                f"  offer                      {offer.generator}: "
                f"{k.show(offer.price)} within {offer.proof_time} s"
            )
        for p in ("price_p50", "price_p90"):
            value = getattr(s, p)
            console.print(
                f"  {p.replace('_', ' '):<26} {k.show(value) if value is not None else '—'}"
            )
        typical = s.typical_proof_time
        console.print(
            f"  typical proof time         {f'{typical} s' if typical is not None else '—'}"
        )
        console.print("at stake", style="bold")
        for line in data["at_stake"]:
            console.print(f"  - {line}")


def _market_json(k: Kalypso, m: Market, s: MarketStats) -> dict[str, Any]:
    def image(value: bytes) -> str | None:
        return None if value == NO_IMAGE else "0x" + value.hex()

    return {
        "id": m.id,
        "name": m.name,
        "name_note": m.name_note,
        "verifier": m.verifier,
        "proof_system": m.proof_system,
        "slashing_penalty": m.slashing_penalty,
        "slashing_penalty_units": k.show(m.slashing_penalty),
        "input_verifier": m.input_verifier,
        "generator_image": image(m.generator_image),
        "input_verification_image": image(m.input_verification_image),
        "proof_verification_image": image(m.proof_verification_image),
        "requests": m.request_kinds.name.lower(),
        "inputs": m.inputs,
        "public_signals": m.public_signals,
        "circuit": m.circuit,
        "at_stake": m.stakes(k.show),
        "stats": {
            "open_requests": s.open_requests,
            "active_generators": s.active_generators,
            "offers": [
                {"generator": o.generator, "price": o.price, "proof_time": o.proof_time}
                for o in s.offers
            ],
            "price_p50": s.price_p50,
            "price_p90": s.price_p90,
            "recent_prices": len(s.prices),
            "typical_proof_time": s.typical_proof_time,
            "block_time": s.block_time,
        },
    }
