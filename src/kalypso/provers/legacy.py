"""A prover written for Marlin's Kalypso (its prover template), used unmodified.

The API, read from Marlin's source (docs/reference/marlin-prover-api.md cites file, commit
and line for each point):

    POST {url}/api/checkInput       InputPayload -> 200 {"valid": bool}
    POST {url}/api/generateProof    InputPayload -> 200 {"proof": [u8…]}
    GET  {url}/api/benchmark                     -> 200 {"data": str, "time_in_ms": n}
    GET  {url}/api/test                          -> 200 {"data": "…running!"}

    InputPayload = {"public": [u8…], "secrets": null | {"PlainSecrets": [u8…]}}

Every verdict is HTTP 200; a body serde refuses is 400 text, an unknown route or method an
empty 404, a body over 2 MiB 413. A prover that cannot prove panics, and the template
aborts on panic: the connection closes with no answer (and the process is gone).

Two layouts (§1): a *confidential* prover serves every route on one port; a
*non-confidential* one serves only test, benchmark and generateProof, with checkInput on
a separate IVS server (`ivs_url`). As Marlin's listener does (§4), checkInput is asked
first and generateProof only for inputs it finds valid.

`public` is the request's public inputs. Marlin's circom markets carry `abi.encode(
uint256[N])`, 32·N bytes; Kalypso's carry `abi.encode(uint256[])`. With
`public_encoding="fixed"` (the default) the request's signals are re-encoded as the fixed
array a template prover decodes; `"verbatim"` sends the request's bytes as they are.
The proof is taken as the bytes `submit_proof` takes, proving the request's own inputs.

`PlainSecrets` are the request's private inputs in the clear, so they are sent only by a
`confidential=True` prover, which only the Generator Image builds and only to a loopback
URL: the prover beside it inside the enclave. `getAttestationForInvalidInputs` is never
called: its signature is bound to no chain, contract or market and the secrets in its
body are the caller's word (§4), so invalid inputs are settled through the market's own
path (its input verifier, or an Input Verification or Generator Image).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from kalypso.errors import ConfigError, ProverError, ProverTimeout
from kalypso.market import decode_signals
from kalypso.provers import InvalidInputs
from kalypso.provers.wire import BytesProof

__all__ = ["ENCODINGS", "Benchmark", "LegacyProver"]

#: how `public` is encoded for the prover (see the module docstring)
ENCODINGS = ("fixed", "verbatim")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Benchmark:
    """A template prover's `/api/benchmark` answer."""

    data: Any
    time_ms: float


def _u8_list(value: Any) -> bytes | None:
    if not isinstance(value, list):
        return None
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value):
        return None
    return bytes(value)


def fixed_array(public_inputs: bytes) -> bytes:
    """`abi.encode(uint256[])` re-encoded as `abi.encode(uint256[N])`: the words alone."""
    return b"".join(value.to_bytes(32, "big") for value in decode_signals(public_inputs))


class LegacyProver:
    """A `TaskProver` speaking Marlin's prover-template API (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        ivs_url: str | None = None,
        public_encoding: str = "fixed",
        confidential: bool = False,
    ) -> None:
        if public_encoding not in ENCODINGS:
            raise ConfigError(f"public_encoding must be fixed or verbatim, not {public_encoding!r}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        if confidential and (ivs_url or urlsplit(url).hostname not in LOOPBACK):
            raise ConfigError(
                "a prover given private inputs must be the confidential prover beside the "
                f"Generator Image, on a loopback URL with no separate IVS; not {url}"
            )
        self.url = url.rstrip("/")
        self.ivs_url = (ivs_url or url).rstrip("/")
        self.timeout = timeout
        self.public_encoding = public_encoding
        self.confidential = confidential
        self._client = httpx.AsyncClient(timeout=timeout)

    async def prove_task(
        self, public_inputs: bytes, secret: bytes | None
    ) -> BytesProof | InvalidInputs:
        """checkInput, then generateProof for inputs found valid."""
        if secret and not self.confidential:
            raise ConfigError(
                "private inputs go only to a confidential prover inside the Generator Image"
            )
        if self.public_encoding == "fixed":
            try:
                public = fixed_array(public_inputs)
            except ConfigError as exc:
                return InvalidInputs(f"the public inputs are not signals: {exc}")
        else:
            public = public_inputs
        payload = {
            "public": list(public),
            "secrets": {"PlainSecrets": list(secret)} if secret else None,
        }
        try:
            async with asyncio.timeout(self.timeout):
                verdict = await self._call("POST", self.ivs_url, "/api/checkInput", payload)
                if not isinstance(verdict, Mapping) or not isinstance(verdict.get("valid"), bool):
                    raise ProverError(f"{self.ivs_url}/api/checkInput answered without valid")
                if not verdict["valid"]:
                    return InvalidInputs(f"the prover's checkInput at {self.ivs_url} says invalid")
                answer = await self._call("POST", self.url, "/api/generateProof", payload)
        except TimeoutError:
            raise ProverTimeout(
                f"the prover at {self.url} did not prove within {self.timeout:g} s; raise "
                "the market's timeout if its proofs need longer"
            ) from None
        proof = _u8_list(answer.get("proof")) if isinstance(answer, Mapping) else None
        if proof is None:
            raise ProverError(f"{self.url}/api/generateProof answered no proof as bytes")
        return BytesProof(proof, public_inputs)

    async def benchmark(self) -> Benchmark:
        """The prover's own benchmark (`GET /api/benchmark`)."""
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._call("GET", self.url, "/api/benchmark")
        except TimeoutError:
            raise ProverTimeout(
                f"the prover at {self.url} did not benchmark within {self.timeout:g} s"
            ) from None
        if not isinstance(answer, Mapping) or not isinstance(answer.get("time_in_ms"), int | float):
            raise ProverError(f"{self.url}/api/benchmark answered a malformed benchmark")
        return Benchmark(answer.get("data"), float(answer["time_in_ms"]))

    async def check(self) -> None:
        """At start: both servers answer `/api/test`, and checkInput is served where it
        will be asked (an empty body: 400 where the route exists, 404 where not), so a
        wrong URL or layout is a config error now, not a lost task later."""
        for base in dict.fromkeys((self.url, self.ivs_url)):
            try:
                response = await self._client.get(base + "/api/test", timeout=5)
            except httpx.HTTPError as exc:
                raise ConfigError(
                    f"the prover at {base} is unreachable ({type(exc).__name__}): start it "
                    "or fix its URL"
                ) from None
            if response.status_code != 200:
                raise ConfigError(
                    f"{base}/api/test answered HTTP {response.status_code}: not a prover "
                    "built on Marlin's template (or the URL has a path it should not)"
                )
        try:
            probe = await self._client.post(self.ivs_url + "/api/checkInput", json={}, timeout=5)
        except httpx.HTTPError as exc:
            raise ConfigError(f"{self.ivs_url}/api/checkInput failed: {exc!r}") from None
        if probe.status_code == 404:
            raise ConfigError(
                f"{self.ivs_url} serves no /api/checkInput: a non-confidential prover keeps "
                "it on its IVS server; give that server's URL as ivs_url"
            )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, base: str, path: str, body: Any = None) -> Any:
        where = base + path
        try:
            response = await self._client.request(method, where, json=body)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.RemoteProtocolError:
            raise ProverError(
                f"{where} closed the connection without answering: a template prover "
                "panics (and aborts) when it cannot prove; see its log, and restart it"
            ) from None
        except httpx.HTTPError as exc:
            raise ProverError(
                f"cannot reach {where} ({type(exc).__name__}): is it running?"
            ) from None
        if response.status_code != 200:
            # a confidential prover's text may quote the secret: only its status leaves
            said = "" if self.confidential else f": {response.text[:300]!r}"
            raise ProverError(f"{where} answered HTTP {response.status_code}{said}")
        try:
            return response.json()
        except ValueError:
            raise ProverError(f"{where} answered something that is not JSON") from None
