"""`kalypso generator fetch`: a market's wasm and zkey, checked against its metadata's
hashes and the on-chain verifier (its code and the key in it) before they land."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from kalypso.circuits import CIRCUIT_NAME, circuit, load_schema
from kalypso.circuits.solvers import BUILTIN_SOLVERS
from kalypso.contracts.client import MarketplaceClient
from kalypso.errors import ChainError, ConfigError, UnauditedMarketError
from kalypso.generator.operator.chain import market_id, metadata
from kalypso.market import RequestKinds
from kalypso.market.audit import AuditFiles, audit_market, read_market
from kalypso.market.codecheck import CODE_CHECKS

_CHUNK = 1 << 20

#: (artifact file name, bytes so far, total bytes or None)
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Fetched:
    market_id: int
    #: the market's on-chain name (its metadata's), if it has one
    name: str | None
    wasm: Path
    zkey: Path
    schema: Path
    solver: str | None
    #: the market's verifier code failed the audit and the operator trusts it anyway
    trust_code: bool = False
    #: the market's Generator Image id, if it has one
    generator_image: bytes | None = None
    request_kinds: RequestKinds = RequestKinds.PUBLIC

    def snippet(self) -> str:
        """The config table that proves this market with the fetched files, keyed by id
        (a name can become ambiguous when someone creates a market named alike); in its
        Generator Image where it has one (the only prover of its private requests)."""
        lines = [
            market_comment(self.market_id, self.name),
            f"[markets.{self.market_id}]",
            "# price = …           # (required) base units per proof; see `benchmark`",
            "# proof_time = …      # (required) seconds; `benchmark` suggests one",
        ]
        files = [
            'prover = "snarkjs"',
            f"wasm = {json.dumps(str(self.wasm))}",
            f"zkey = {json.dumps(str(self.zkey))}",
            f"schema = {json.dumps(str(self.schema))}",
        ]
        if self.solver:
            files.append(f'solver = "{self.solver}"')
        if self.generator_image is None:
            lines += files
        else:
            lines += [
                "# proven in the market's Generator Image: run `kalypso enclave generator",
                f"# --market {self.market_id} --circuit FOLDER` (FOLDER: the creator's build "
                "folder);",
                f"# its image id must be 0x{self.generator_image.hex()}",
                'prover = "enclave"',
                'url = "http://127.0.0.1:7303"  # where that Generator Image serves',
            ]
            if self.request_kinds == RequestKinds.BOTH:
                lines.append("# or, for its public requests only, prove here instead:")
                lines += [f"# {line}" for line in files]
        if self.trust_code:
            lines.append("trust_market_code = true  # its verifier code failed the audit")
        return "\n".join(lines) + "\n"


def market_comment(market_id: int, name: str | None) -> str:
    """The comment line above a market's table: its id and on-chain name, quoted as JSON
    so that a name (anyone's choice) cannot end the comment and add keys."""
    named = f", named {json.dumps(name)} on-chain" if name else " (no on-chain name)"
    return f"# market {market_id}{named}"


def fetch_artifacts(
    chain: tuple[str, Path | None],
    market: str,
    *,
    source: str | None = None,
    dest: Path | None = None,
    progress: Progress | None = None,
    trust_code: bool = False,
) -> Fetched:
    """Get a market's wasm and zkey from `source` (a directory or an http(s) base URL
    holding `<circuit>.wasm` and `<circuit>.zkey`; default: the sample circuit the
    metadata names) into `dest`. Nothing lands there unless both files have the
    metadata's SHA-256, the verifier and input verifier pass the code audit (or
    `trust_code`) and the zkey's verifying key is the one in the verifier's code.
    `chain` is (rpc_url, deployment file or None)."""
    client = MarketplaceClient.connect(*chain)
    mid = market_id(client, market)
    meta = metadata(read_market(client, mid))
    name, recorded = meta.get("circuit"), meta.get("artifacts") or {}
    if meta.get("verifier") != "groth16" or not isinstance(name, str) or not name:
        raise ConfigError(f"market {mid} is not a Groth16 market with a named circuit")
    if not CIRCUIT_NAME.fullmatch(name):  # anyone's choice, and it names the files written
        raise ConfigError(f"market {mid}'s circuit name {name!r} is not a plain name: refused")
    for kind in ("wasm", "zkey"):
        if not isinstance(recorded.get(kind), str):
            raise ConfigError(f"market {mid}'s metadata records no {kind} hash to check against")
    folder = dest or Path.home() / ".kalypso" / "artifacts" / str(client.w3.eth.chain_id) / str(mid)
    folder = folder.expanduser().resolve()  # the config table needs paths that hold anywhere
    folder.mkdir(parents=True, exist_ok=True)
    origins = _origins(source, name)
    parts: dict[str, Path] = {}
    try:
        for kind in ("wasm", "zkey"):
            file = f"{name}.{kind}"
            parts[kind] = _download(origins[kind], folder, file, recorded[kind], progress)
        checks = audit_market(client, mid, AuditFiles(zkey=parts["zkey"]))
        trusted = [c for c in checks if not c.ok and c.name in CODE_CHECKS and trust_code]
        failed = [c for c in checks if not c.ok and c not in trusted]
        if failed:
            why = "; ".join(f"{c.name}: {c.detail}" for c in failed)
            if any(c.name in CODE_CHECKS for c in failed):
                raise UnauditedMarketError(
                    f"market {mid}'s artifacts refused (deleted): {why} (--trust-market-code "
                    "fetches anyway, if you trust its owner not to switch it)"
                )
            raise ConfigError(f"market {mid}'s artifacts refused (deleted): {why}")
        schema = {k: meta.get(k) for k in ("description", "inputs", "public_signals")}
        parts["schema"] = _temp(folder, "schema", json.dumps(schema, indent=2).encode() + b"\n")
        load_schema(parts["schema"])
        final = {kind: folder / f"{name}.{kind}" for kind in ("wasm", "zkey")}
        final["schema"] = folder / f"{name}.schema.json"
        for kind, part in parts.items():
            part.replace(final[kind])
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    solver = name if name in BUILTIN_SOLVERS else None
    own = meta.get("name")
    title = str(own) if own not in (None, "") else None
    terms = client.markets.functions.market(mid).call()
    image = bytes(terms[4])
    return Fetched(
        mid, title, final["wasm"], final["zkey"], final["schema"], solver, bool(trusted),
        generator_image=image if any(image) else None, request_kinds=RequestKinds(int(terms[9])),
    )  # fmt: skip


def _origins(source: str | None, name: str) -> dict[str, str]:
    if source is None:
        try:
            sample = circuit(name)
        except ConfigError:
            raise ConfigError(
                f"{name!r} is not a sample circuit: give --source DIR or URL"
            ) from None
        return {"wasm": str(sample.wasm), "zkey": str(sample.zkey)}
    if source.startswith(("http://", "https://")):
        return {kind: f"{source.rstrip('/')}/{name}.{kind}" for kind in ("wasm", "zkey")}
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--source {source} is neither a directory nor an http(s) URL")
    return {kind: str(folder / f"{name}.{kind}") for kind in ("wasm", "zkey")}


def _chunks(origin: str) -> Iterator[tuple[bytes, int | None]]:
    """The bytes of a file or URL, streamed, each chunk with the total size if known."""
    if not origin.startswith(("http://", "https://")):
        try:
            with open(origin, "rb") as handle:
                total = os.fstat(handle.fileno()).st_size
                while chunk := handle.read(_CHUNK):
                    yield chunk, total
        except FileNotFoundError:
            raise ConfigError(f"no file {origin}") from None
        return
    try:
        with httpx.stream("GET", origin, follow_redirects=True, timeout=60) as answer:
            if answer.status_code >= 400:
                raise ConfigError(f"{origin} answered HTTP {answer.status_code}")
            length = answer.headers.get("content-length")
            for chunk in answer.iter_bytes(_CHUNK):
                yield chunk, int(length) if length and length.isdigit() else None
    except httpx.HTTPError as exc:
        raise ChainError(f"cannot download {origin}: {type(exc).__name__} {exc}") from None


def _temp(folder: Path, file: str, data: bytes = b"") -> Path:
    """A new hidden file beside where `file` will land (renamed into place when checked)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{file}.", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


def _download(
    origin: str, folder: Path, file: str, expected: str, progress: Progress | None
) -> Path:
    part = _temp(folder, file)
    digest, done = hashlib.sha256(), 0
    try:
        with part.open("wb") as out:
            for chunk, total in _chunks(origin):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(file, done, total)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise ConfigError(
                f"{file} from {origin} has SHA-256 {actual[:16]}…, the market's metadata "
                f"{expected[:16]}…: refused and deleted (wrong source, or a tampered file)"
            )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return part
