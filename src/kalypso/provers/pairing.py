"""Groth16 verification in Python with py_ecc's optimized BN254 (about a second)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from py_ecc.optimized_bn128 import (
    FQ,
    FQ2,
    FQ12,
    add,
    final_exponentiate,
    is_on_curve,
    multiply,
    neg,
    pairing,
)
from py_ecc.optimized_bn128 import b as B1
from py_ecc.optimized_bn128 import b2 as B2

if TYPE_CHECKING:
    from kalypso.provers.proof import Groth16Proof


def _g1(x: int, y: int) -> tuple[FQ, FQ, FQ]:
    return (FQ(x), FQ(y), FQ(1))


def _g2(p: Sequence[Sequence[Any]]) -> tuple[FQ2, FQ2, FQ2]:
    return (FQ2([int(p[0][0]), int(p[0][1])]), FQ2([int(p[1][0]), int(p[1][1])]), FQ2([1, 0]))


def verify_groth16(vkey: Mapping[str, Any], proof: Groth16Proof) -> bool:
    ic = vkey["IC"]
    if len(proof.public_signals) != len(ic) - 1:
        return False
    a, c = _g1(*proof.a), _g1(*proof.c)
    b = _g2(proof.b)
    if not (is_on_curve(a, B1) and is_on_curve(c, B1) and is_on_curve(b, B2)):
        return False
    vk_x = _g1(int(ic[0][0]), int(ic[0][1]))
    for signal, point in zip(proof.public_signals, ic[1:], strict=True):
        vk_x = add(vk_x, multiply(_g1(int(point[0]), int(point[1])), signal))
    alpha = _g1(int(vkey["vk_alpha_1"][0]), int(vkey["vk_alpha_1"][1]))
    product = (
        pairing(b, neg(a), final_exponentiate=False)
        * pairing(_g2(vkey["vk_beta_2"]), alpha, final_exponentiate=False)
        * pairing(_g2(vkey["vk_gamma_2"]), vk_x, final_exponentiate=False)
        * pairing(_g2(vkey["vk_delta_2"]), c, final_exponentiate=False)
    )
    return bool(final_exponentiate(product) == FQ12.one())
