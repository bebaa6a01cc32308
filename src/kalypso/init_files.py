"""The files `kalypso init` writes: commented examples, or files filled for a deployment.

Filled, they hold the deployment's RPC URL and file, keystore lines pointing at
placeholder paths (and the password variables), and for the generator one table per
market that exists on-chain, keyed by id with the market's on-chain name in a comment:
a name can become ambiguous when anyone creates a market named alike, an id cannot.
Each filled file loads with its daemon's config loader as written; the prices and proof
times in it are placeholders to set (`kalypso generator benchmark` suggests them).
Pure: the markets are read by the caller.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kalypso.circuits.solvers import BUILTIN_SOLVERS
from kalypso.deployment import Deployment
from kalypso.generator.config import EXAMPLE as GENERATOR_EXAMPLE
from kalypso.generator.config import EXAMPLE_SETTINGS
from kalypso.generator.operator.fetch import market_comment
from kalypso.generator.process import toml_value
from kalypso.market.types import RequestKinds
from kalypso.matching.config import EXAMPLE as MATCHER_EXAMPLE
from kalypso.sdk.markets import NO_IMAGE, Market

APP_EXAMPLE = """\
# Kalypso for an app: `set -a; . ./kalypso.env; set +a`, then `Kalypso.from_env()` in
# Python or any `kalypso request …` command reads these.

# The chain's JSON-RPC endpoint (`kalypso devnet` serves one on 8545).
KALYPSO_RPC_URL=http://127.0.0.1:8545

# The deployment file; by default ~/.kalypso/deployments/<chain id>.json, which
# `kalypso devnet` and `kalypso deploy` write.
# KALYPSO_DEPLOYMENT=/path/to/deployment.json

# Your key: an encrypted Ethereum keystore (V3 JSON; `kalypso keystore new --out FILE`
# makes one). Its password: KALYPSO_KEYSTORE_PASSWORD, else the first line of the file
# KALYPSO_KEYSTORE_PASSWORD_FILE names, else the CLI asks at the terminal …
# KALYPSO_KEYSTORE=/path/to/keystore.json
# KALYPSO_KEYSTORE_PASSWORD_FILE=/path/to/password.txt
# … or a raw key (the devnet prints funded ones; never a real key in a file).
# KALYPSO_PRIVATE_KEY=0x…
"""

#: role -> the file it writes
FILES = {"app": "kalypso.env", "generator": "generator.toml", "matcher": "matcher.toml"}
EXAMPLES = {"app": APP_EXAMPLE, "generator": GENERATOR_EXAMPLE, "matcher": MATCHER_EXAMPLE}

#: where `kalypso generator fetch` puts a market's checked artifacts by default
ARTIFACTS = "~/.kalypso/artifacts/{chain_id}/{market_id}/{circuit}"
#: the column the examples' comments start at, and the width they wrap at
COMMENT_AT = 41
WIDTH = 92


@dataclass(frozen=True)
class Deployed:
    """What the files are filled for."""

    rpc_url: str
    #: the deployment file (written into the configs as given: make it absolute)
    path: Path
    deployment: Deployment
    #: the markets to give tables (the generator) or a shard list (the matcher)
    markets: Sequence[Market]
    #: every market is in `markets` (no `--market` chose some)
    every_market: bool
    #: where the keystore placeholders point
    directory: Path

    @property
    def unit(self) -> int:
        return int(10**self.deployment.token_decimals)


def filled(target: Deployed) -> dict[str, str]:
    """Each role's file text, filled for `target`."""
    return {"app": app_env(target), "generator": generator_toml(target), "matcher": matcher(target)}


def app_env(target: Deployed) -> str:
    values = {
        "KALYPSO_RPC_URL": target.rpc_url,
        "KALYPSO_DEPLOYMENT": str(target.path),
        "KALYPSO_KEYSTORE": str(target.directory / "app-keystore.json"),
    }
    return (
        "# Filled by `kalypso init` for chain "
        f"{target.deployment.chain_id}: KALYPSO_KEYSTORE is a placeholder path to replace.\n"
        + set_env(APP_EXAMPLE, values)
    )


def generator_toml(target: Deployed) -> str:
    penalties = [m.slashing_penalty for m in target.markets]
    compute = 4  # the example's
    settings = set_keys(
        EXAMPLE_SETTINGS,
        {
            "rpc_url": toml_value(target.rpc_url),
            "deployment": toml_value(str(target.path)),
            "keystore": toml_value(str(target.directory / "generator-keystore.json")),
            # enough for `compute` tasks at once at the largest penalty
            "stake": str(max([1_000 * target.unit, *(compute * p for p in penalties)])),
            "compute": str(compute),
        },
    )
    settings = settings.replace(
        "# generator.toml — keys marked (required) must be set\n",
        f"# generator.toml for chain {target.deployment.chain_id} — keys marked (required) must "
        "be set.\n# Placeholders to replace: the keystore path (or delete the line to use\n"
        "# KALYPSO_GENERATOR_KEY), each market's price and proof time.\n",
    )
    tables = [market_table(m, target) for m in target.markets]
    if not tables:
        tables = ["# The marketplace has no markets yet: add a [markets.<id>] table per market"]
    return settings + "\n" + "\n\n".join(tables) + "\n"


def market_table(market: Market, target: Deployed) -> str:
    """One market's table: a placeholder offer and the prover its kind needs."""
    d, mid = target.deployment, market.id
    config = "-c generator.toml"
    lines = [
        market_comment(mid, market.metadata_name),
        f"[markets.{mid}]",
        _line(
            f"price = {5 * target.unit}",
            f"(required) base units: 5 {d.token_symbol}, a placeholder",
        ),
        _line(
            "proof_time = 60",
            f"(required) seconds, a placeholder: `kalypso generator benchmark {mid} {config}` "
            "suggests one and prints the break-even price",
        ),
        "compute_per_request = 1",
    ]
    circuit = market.circuit
    if market.request_kinds == RequestKinds.PRIVATE:
        lines += [
            _line('prover = "enclave"', "its requests are private: proven only in its image"),
            _line(
                'url = "http://127.0.0.1:7303"',
                f"placeholder: its Generator Image (`kalypso enclave generator --market {mid}`)",
            ),
        ]
    elif market.proof_system == "plonk" and circuit:
        lines += [
            'prover = "snarkjs"',
            'proof_system = "plonk"',
            f"circuit = {toml_value(circuit)}",
            _line(
                'proof_attestor = "http://127.0.0.1:7301"',
                f"placeholder: its Proof Verification Image (`kalypso enclave pvs --market {mid}`)",
            ),
        ]
    elif market.proof_system == "groth16" and circuit:
        files = ARTIFACTS.format(chain_id=d.chain_id, market_id=mid, circuit=circuit)
        lines += [
            'prover = "snarkjs"',
            f"# `kalypso generator fetch {mid} {config}` downloads and checks these three:",
            f"wasm = {toml_value(files + '.wasm')}",
            f"zkey = {toml_value(files + '.zkey')}",
            f"schema = {toml_value(files + '.schema.json')}",
        ]
        if circuit in BUILTIN_SOLVERS:
            lines.append(f"solver = {toml_value(circuit)}")
    else:
        lines += [
            _line('prover = "command"', "its metadata names no circuit snarkjs can prove"),
            _line('command = ["./my-prover"]', "placeholder: see kalypso.provers.command"),
        ]
    if market.request_kinds == RequestKinds.BOTH:
        lines.append('# its private requests are proven only by prover = "enclave" (its image)')
    if market.input_verification_image != NO_IMAGE:
        lines.append('# input_attestor = "http://127.0.0.1:7302"  # its Input Verification Image')
    return "\n".join(lines)


def matcher(target: Deployed) -> str:
    ids = [m.id for m in target.markets]
    values = {
        "rpc_url": toml_value(target.rpc_url),
        "deployment": toml_value(str(target.path)),
        "keystore": toml_value(str(target.directory / "matcher-keystore.json")),
    }
    if not target.every_market:  # the markets chosen: this matcher's shard
        values["markets"] = toml_value(ids)
    text = set_keys(MATCHER_EXAMPLE, values)
    if target.every_market and ids:
        text = set_keys(text, {"markets": toml_value(ids)}, comment_out=True)
    listing = "".join(f"{market_comment(m.id, m.metadata_name)}\n" for m in target.markets)
    return text.replace(
        "# matcher.toml — every key is optional except where noted\n",
        f"# matcher.toml for chain {target.deployment.chain_id} — every key is optional except "
        "where noted.\n# Placeholder to replace: the keystore path (or delete the line to use "
        "KALYPSO_MATCHER_KEY).\n"
        + (
            f"# The markets {'chosen' if not target.every_market else 'on-chain'}:\n{listing}"
            if listing
            else "# The marketplace has no markets yet.\n"
        ),
    )


_KEY_LINE = re.compile(r"^(?:# )?(?P<key>\w+) = (?P<value>.*?)(?P<comment>\s{2,}#.*)?$")


def set_keys(example: str, values: Mapping[str, str], *, comment_out: bool = False) -> str:
    """`example` with each key's line (commented out or not) set to its value (a TOML
    literal), keeping the line's comment; `comment_out` writes them commented out."""
    lines = example.splitlines(keepends=True)
    for key, value in values.items():
        for i, line in enumerate(lines):
            found = _KEY_LINE.match(line.rstrip("\n"))
            if found and found["key"] == key:
                assignment = f"{'# ' if comment_out else ''}{key} = {value}"
                comment = (found["comment"] or "").strip()[2:]
                lines[i] = _line(assignment, comment, wrap=False) + "\n"
                break
        else:
            raise KeyError(f"no line for {key} in the example")
    return "".join(lines)


def set_env(example: str, values: Mapping[str, str]) -> str:
    """`example` (shell variable lines) with each variable set, uncommented, quoted."""
    for name, value in values.items():
        line = f"{name}={shlex.quote(value)}".replace("\\", "\\\\")  # a literal replacement
        example = re.sub(rf"^(?:# )?{name}=.*$", line, example, count=1, flags=re.MULTILINE)
    return example


def _line(assignment: str, comment: str, *, wrap: bool = True) -> str:
    """`assignment`, then `# comment` at the examples' comment column, wrapped (`wrap`)
    onto comment-only lines below as the examples do."""
    if not comment:
        return assignment
    column = COMMENT_AT if len(assignment) < COMMENT_AT - 1 else len(assignment) + 2
    width = max(40, WIDTH - column - 2) if wrap else len(comment)
    first, *rest = textwrap.wrap(comment, width) or [""]
    lines = [f"{assignment.ljust(column)}# {first}"]
    lines += [f"{' ' * COMMENT_AT}# {more}" for more in rest]
    return "\n".join(lines)
