"""`kalypso market create` as one action: what makes two runs the same, the market id of
its receipt, and an error after its verifier was mined (`kalypso.market.groth16`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kalypso.circuits import circuit
from kalypso.cli.once import already_done
from kalypso.errors import ChainError
from kalypso.market import groth16
from kalypso.market.events import marketplace_decoder
from kalypso.market.groth16 import DEPLOY_VERIFIER, create_action, created_market_id

REGISTRY = "0x" + "cd" * 20
TX = b"\x11" * 32


def receipt(*logs: dict[str, Any]) -> Any:
    return {"transactionHash": TX, "blockNumber": 9, "logs": list(logs), "status": 1}


def market_created(market_id: int, address: str = REGISTRY) -> dict[str, Any]:
    topic = marketplace_decoder().topic("MarketCreated")
    return {"address": address, "topics": [topic, market_id.to_bytes(32, "big"), b"\0" * 32]}


def test_the_same_market_is_the_same_action_whatever_its_files_are_called() -> None:
    c = circuit("square_root")
    terms = groth16.groth16_terms(c, slashing_penalty=5)
    same = create_action("roots", replace(c, zkey=c.zkey.parent / "elsewhere"), terms)
    assert create_action("roots", c, terms) == same
    assert create_action("roots", c, replace(terms, slashing_penalty=6)) != same
    assert create_action("other", c, terms) != same
    assert create_action("roots", replace(c, transcript_sha256="00" * 32), terms) != same


def test_the_market_id_comes_from_the_registry_log() -> None:
    assert (
        created_market_id(receipt(market_created(7, "0x" + "ee" * 20), market_created(3)), REGISTRY)
        == 3
    )
    with pytest.raises(ChainError, match="created no market"):
        created_market_id(receipt(), REGISTRY)


def test_already_done_names_the_market() -> None:
    line = already_done(receipt(market_created(12)))
    assert line.startswith("already done") and "(market 12)" in line and "block 9" in line


def test_an_error_after_the_verifier_was_mined_says_a_rerun_reuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes: dict[str, Any] = {}

    def fails_after_deploying(*_: Any, on_sent: Any, **__: Any) -> None:
        on_sent(TX, 1, DEPLOY_VERIFIER)
        raise ChainError("markets: fee above max")

    class Client:
        w3 = None

    class Signer:
        account = None
        on_sent = None

    monkeypatch.setattr(groth16, "create_with_terms", fails_after_deploying)
    monkeypatch.setattr(groth16, "_mined", lambda *_: True)
    c = circuit("square_root")
    terms = groth16.groth16_terms(c, slashing_penalty=5)
    with pytest.raises(ChainError, match=r"deployment 0x1111.* was mined: running the command"):
        groth16.create_resuming(
            Client(),
            Signer(),
            c,
            "x",
            terms,
            None,
            notes,
            notes.__setitem__,  # type: ignore[arg-type]
        )
    assert notes == {"verifier_tx": "0x" + TX.hex()}
