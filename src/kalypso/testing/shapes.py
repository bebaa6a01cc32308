"""What real hosted providers and nodes answer when they refuse a call.

The simulator takes every refusal from here, and every text here was copied from a public
source: a provider's documentation, or a response body quoted in an issue or asserted by a
client's test suite that runs against the live provider. Numbers inside a message (a
limit, a suggested range) are formatted from the simulator's settings; the rest of the
text, the JSON-RPC code and the HTTP status are the provider's. The exact texts are the
`Template`s below; this table says where each came from.

eth_getLogs over too many blocks (range) or matching too many logs (results):

| personality | kind    | HTTP | code   | sources          |
|-------------|---------|------|--------|------------------|
| alchemy     | range   | 200  | -32600 | [1] [2] [3]      |
| alchemy     | results | 200  | -32602 | [4]              |
| infura      | range   | 200  | -32602 | [5]              |
| infura      | results | 200  | -32005 | [4] [6] (+ data) |
| quicknode   | range   | 413  | -32614 | [7] [8] [9]      |
| ankr        | range   | 200  | -32600 | [8]              |
| cloudflare  | range   | 200  | -32047 | [8]              |
| publicnode  | range   | 200  | -32701 | [8] [10]         |
| thirdweb    | range   | 200  | -32005 | [8]              |
| blockpi     | range   | 200  | -32602 | [11]             |
| drpc        | range   | 200  | 35     | [11]             |
| reth        | range   | 200  | -32602 | [11] [12]        |
| reth        | results | 200  | -32602 | [8] [11] (also llamarpc's and ankr's) |
| erigon      | range   | 200  | -32602 | [13]             |
| erigon      | results | 200  | -32000 | [14] (a plain error: erigon's -32000) |

A personality with no documented results text sends Infura's, which geth-based public
endpoints send too (rpc.mevblocker.io in [15]). A lagging backend asked for logs past its
head, when told to refuse rather than clamp, answers as geth does: -32602 "block range
extends beyond current head block" [16].

Rate limits: HTTP 429 with a `Retry-After` header in seconds (RFC 9110 §10.2.3; clients
such as hardhat's HttpProvider honour it [17]) and the provider's body: alchemy 429 [18],
infura -32005 with data.backoff_seconds [19], quicknode 429 [9], base (op proxyd) -32016
[20]; others send Infura's. Some providers send the same error with HTTP 200 (TheRPC:
HTTP 200, -32029 [21]), and in a batch a rate limit is per item in an HTTP 200 answer:
"Sending a batch with 26 requests while your RPS is 25 will result in 25 valid responses
and one (1) error" [22].

Unhealthy backends: HTTP 503 with -32011 "no backend is currently healthy to serve
traffic" (Base's public endpoint, op proxyd) [8] [10]; HTTP 502 from the load balancer,
an HTML page [23] [24].

[1] github.com/risc0/risc0-ethereum/pull/656 (request and response quoted)
[2] github.com/cartesi/rollups-node/pull/655
[3] github.com/BobTheBuidler/dank_mids/issues/772
[4] github.com/ethers-io/ethers.js/issues/4703 (Alchemy's and Infura's bodies quoted)
[5] github.com/INFURA/infura/issues/237
[6] docs.infura.io/reference/ethereum/json-rpc-methods/eth_getlogs/#constraints
[7] github.com/palomachain/paloma/issues/1165 ("413 Request Entity Too Large" + body)
[8] ponder-sh/ponder packages/utils/src/getLogsRetryHelper.ts,
    packages/utils/src/parseGetLogsError/parseGetLogsError.ts, packages/utils/src/_test/
    {alchemy,infura,quicknode,ankr,cloudflare,publicnode,thirdweb,llamarpc}.test.ts
[9] quicknode.com/docs/<chain>/error-references
[10] operators' code comments quoting "-32701 exceed maximum block range: 50000" and
     "-32011: no backend is currently healthy to serve traffic" (search find_string)
[11] github.com/foundry-rs/foundry/issues/12687
[12] paradigmxyz/reth crates/rpc/rpc/src/eth/filter.rs (EthFilterError -> INVALID_PARAMS)
[13] github.com/erigontech/erigon/pull/20424
[14] github.com/erigontech/erigon/pull/19721
[15] sqd.dev/learn/eth-getlogs-limits
[16] ethereum/execution-apis tests/eth_getLogs/filter-error-future-block-range.io
[17] github.com/NomicFoundation/hardhat/pull/811
[18] github.com/conduitxyz/node/issues/36 ("429 Too Many Requests" + body),
     github.com/gitcoinco/grants-stack-indexer/issues/156
[19] docs.infura.io/api/networks/ethereum/how-to/avoid-rate-limiting
[20] github.com/base/node/issues/368
[21] github.com/reown-com/blockchain-api/pull/1102
[22] support.quicknode.com/hc/en-us/articles/12002099702289-429-Errors-Explained
[23] docs.conduit.xyz/rpc-nodes/guides/rpc-errors ("502 Bad gateway")
[24] docs.chainstack.com/reference/node-api-errors-reference
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JsonId = int | str | None


@dataclass(frozen=True)
class Refusal:
    """A JSON-RPC error and the HTTP status it travels with when it is the whole answer."""

    http_status: int
    code: int
    message: str
    data: Any = None

    def error(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


@dataclass(frozen=True)
class Template:
    http_status: int
    code: int
    text: str


@dataclass(frozen=True)
class Personality:
    """One provider's texts; None where it has no documented one (a fallback applies)."""

    name: str
    range: Template
    results: Template | None = None
    rate_limited: Template | None = None


_INFURA_RESULTS = Template(
    200,
    -32005,
    "query returned more than {limit} results. Try with this block range [{from_HEX}, {fit_HEX}].",
)
_INFURA_RATE = Template(429, -32005, "project ID request rate exceeded")
_RETH_RANGE = Template(200, -32602, "query exceeds max block range {limit}")
_RETH_RESULTS = Template(
    200, -32602, "query exceeds max results {limit}, retry with the range {from}-{fit}"
)

PERSONALITIES: dict[str, Personality] = {
    p.name: p
    for p in (
        Personality(
            "alchemy",
            range=Template(
                200,
                -32600,
                "You can make eth_getLogs requests with up to a {limit} block range. Based on "
                "your parameters, this block range should work: [{from_hex}, {fit_hex}]",
            ),
            results=Template(
                200,
                -32602,
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
                "block range and no limit on the response size, or you can request any block "
                "range with a cap of 10K logs in the response. Based on your parameters and the "
                "response size limit, this block range should work: [{from_hex}, {fit_hex}]",
            ),
            rate_limited=Template(
                429,
                429,
                "Your app has exceeded its compute units per second capacity. If you have "
                "retries enabled, you can safely ignore this message. If not, check out "
                "https://docs.alchemy.com/reference/throughput",
            ),
        ),
        Personality(
            "infura",
            range=Template(200, -32602, "range {blocks} exceeds limit of {limit}"),
            results=_INFURA_RESULTS,
            rate_limited=_INFURA_RATE,
        ),
        Personality(
            "quicknode",
            range=Template(413, -32614, "eth_getLogs is limited to a {limit_comma} range"),
            rate_limited=Template(
                429,
                429,
                "The requests per second (RPS) of your requests are higher than your plan allows.",
            ),
        ),
        Personality(
            "ankr", range=Template(200, -32600, "block range is too wide"), results=_RETH_RESULTS
        ),
        Personality(
            "cloudflare",
            range=Template(
                200,
                -32047,
                "Invalid eth_getLogs request. 'fromBlock'-'toBlock' range too large. "
                "Max range: {limit}",
            ),
        ),
        Personality(
            "publicnode", range=Template(200, -32701, "exceed maximum block range: {limit}")
        ),
        Personality(
            "thirdweb",
            range=Template(200, -32005, "Maximum allowed number of requested blocks is {limit}"),
        ),
        Personality(
            "blockpi",
            range=Template(
                200,
                -32602,
                "eth_getLogs is limited to {limit} block range. Please check the parameter "
                "requirements at https://docs.blockpi.io/documentations/api-reference",
            ),
        ),
        Personality(
            "drpc",
            range=Template(200, 35, "ranges over {limit} blocks are not supported on freetier"),
        ),
        Personality(
            "base",
            range=_RETH_RANGE,
            rate_limited=Template(429, -32016, "over rate limit"),
        ),
        Personality("reth", range=_RETH_RANGE, results=_RETH_RESULTS),
        Personality(
            "erigon",
            range=Template(
                200, -32602, "query block range exceeds server limit, narrow your filter: {limit}"
            ),
            results=Template(
                200, -32000, "query returns too many logs, narrow your filter: {limit}"
            ),
        ),
    )
}

#: `personality="rotate"` cycles through these, one refusal after another.
ROTATION: tuple[str, ...] = tuple(PERSONALITIES)


class Voice:
    """Whose texts the next refusal uses: one personality's, or each in turn ("rotate")."""

    def __init__(self) -> None:
        self._turn = 0

    def pick(self, name: str) -> Personality:
        if name != "rotate":
            return PERSONALITIES[name]
        self._turn += 1
        return PERSONALITIES[ROTATION[(self._turn - 1) % len(ROTATION)]]


BEYOND_HEAD = Refusal(200, -32602, "block range extends beyond current head block")
UNAVAILABLE = Refusal(503, -32011, "no backend is currently healthy to serve traffic")
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def _fields(limit: int, from_block: int, to_block: int, fit_to: int) -> dict[str, str]:
    return {
        "limit": str(limit),
        "limit_comma": f"{limit:,}",
        "blocks": str(to_block - from_block + 1),
        "from": str(from_block),
        "fit": str(fit_to),
        "from_hex": hex(from_block),
        "fit_hex": hex(fit_to),
        "from_HEX": f"0x{from_block:X}",
        "fit_HEX": f"0x{fit_to:X}",
    }


def range_refusal(personality: Personality, limit: int, from_block: int, to_block: int) -> Refusal:
    """Logs asked over `to_block - from_block + 1 > limit` blocks."""
    fit_to = from_block + limit - 1
    t = personality.range
    text = t.text.format_map(_fields(limit, from_block, to_block, fit_to))
    return Refusal(t.http_status, t.code, text)


def results_refusal(
    personality: Personality, limit: int, from_block: int, to_block: int, fit_to: int
) -> Refusal:
    """More than `limit` logs matched; `fit_to` is the last block that keeps them under it."""
    t = personality.results or _INFURA_RESULTS
    text = t.text.format_map(_fields(limit, from_block, to_block, fit_to))
    data = None
    if t is _INFURA_RESULTS:
        data = {"from": f"0x{from_block:X}", "limit": limit, "to": f"0x{fit_to:X}"}
    return Refusal(t.http_status, t.code, text, data)


def rate_limited(
    personality: Personality, retry_after: int, current_rps: float, allowed_rps: float
) -> Refusal:
    """The provider's rate-limit answer; Infura's carries its backoff hint in the body too.

    Its `current_rps` and `allowed_rps` are illustrative (the simulator measures no rate):
    the caller passes the budget, or 10 as in Infura's own example, and 1.5 times it.
    """
    t = personality.rate_limited or _INFURA_RATE
    data = None
    if t is _INFURA_RATE:
        data = {
            "see": "https://infura.io/docs/ethereum/jsonrpc/ratelimits",
            "current_rps": round(current_rps, 3),
            "allowed_rps": round(allowed_rps, 3),
            "backoff_seconds": float(retry_after),
        }
    return Refusal(t.http_status, t.code, t.text, data)


def error_body(refusal: Refusal, request_id: JsonId) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": refusal.error()}, separators=(",", ":")
    ).encode()
