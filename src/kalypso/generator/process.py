"""The generator node as a child process (for `kalypso devnet`, the demo and tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.devnet import ATTESTED_MARKET, PRIVATE_MARKET
from kalypso.process import DaemonProcess


def toml_value(value: Any) -> str:
    """A TOML literal of a str, int, float, bool, path or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def render_config(settings: Mapping[str, Any], markets: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for name, table in markets.items():
        lines.append(f"\n[markets.{json.dumps(name)}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


class GeneratorProcess(DaemonProcess):
    """`kalypso generator run` in its own process, with a config written from arguments."""

    account: LocalAccount  # always keyed

    def __init__(
        self,
        workdir: Path,
        *,
        rpc_url: str,
        deployment: Path,
        account: LocalAccount,
        api_port: int,
        markets: Mapping[str, Mapping[str, Any]],
        stake: int,
        compute: int = 4,
        name: str = "generator",
        **settings: Any,
    ) -> None:
        self.config = workdir / f"{name}.toml"
        values = {
            "rpc_url": rpc_url,
            "deployment": deployment,
            "state": workdir / f"{name}.sqlite",
            "stake": stake,
            "compute": compute,
            "poll_interval": 0.2,
            "api_port": api_port,
            **settings,
        }
        self.config.write_text(render_config(values, markets))
        super().__init__(
            name,
            ["generator", "run", "--config", str(self.config)],
            workdir=workdir,
            account=account,
            key_env="KALYPSO_GENERATOR_KEY",
            api_port=api_port,
        )


def devnet_generator(
    workdir: Path,
    rpc_url: str,
    deployment: Path,
    enclave_urls: Mapping[str, str],
    *,
    account: LocalAccount,
    api_port: int,
    name: str = "generator",
    price: Mapping[str, int] | None = None,
) -> GeneratorProcess:
    """A generator node for every devnet market (not started): poseidon_preimage's private
    requests through the Generator Image at `enclave_urls["generator"]`, square_root with
    its solver, and the PLONK market attested by the PVS and IVS images.
    `price` overrides the default price (base units) of a market by name."""
    prices = {
        PRIVATE_MARKET: 10 * TOKEN_UNIT,
        "square_root": 5 * TOKEN_UNIT,
        ATTESTED_MARKET: 6 * TOKEN_UNIT,
        **(price or {}),
    }
    square_root = {"circuit": "square_root", "solver": "square_root"}
    markets: dict[str, dict[str, Any]] = {
        PRIVATE_MARKET: {"prover": "enclave", "url": enclave_urls["generator"]},
        "square_root": square_root,
        ATTESTED_MARKET: {
            **square_root,
            "proof_system": "plonk",
            "proof_attestor": enclave_urls["pvs"],
            "input_attestor": enclave_urls["ivs"],
        },
    }
    for market, table in markets.items():
        table.update(price=prices[market], proof_time=60)
    return GeneratorProcess(
        workdir,
        rpc_url=rpc_url,
        deployment=deployment,
        account=account,
        api_port=api_port,
        stake=1_000 * TOKEN_UNIT,
        compute=8,
        name=name,
        markets=markets,
    )
