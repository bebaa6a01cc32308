"""What an operator does beside running the node (DESIGN §8, operators): fetch and check
a market's artifacts before joining it, ask the matcher why no tasks come, benchmark the
prover and price a proof, report tasks, stake and profitability, and exit to take the
stake back.

`kalypso generator fetch|why|benchmark|status|exit` print what these return. Reads go
through the synchronous clients; `exit` is the only one that signs, and it refuses
to while the node runs (the node owns the key's nonce).

One module a job: `fetch`, `diagnosis` (why), `benchmarking`, `exiting`, `status`; `chain`
holds the reads they share. Everything public is re-exported here.
"""

from kalypso.generator.operator.benchmarking import (
    GROTH16_GAS_PER_SIGNAL,
    GROTH16_VERIFY_GAS,
    MIN_PROOF_TIME,
    SUBMIT_GAS,
    Benchmark,
    benchmark,
    quantile,
    submit_gas,
    suggest_proof_time,
)
from kalypso.generator.operator.chain import connect, market_id, metadata
from kalypso.generator.operator.diagnosis import (
    DEFAULT_MATCHER_URL,
    HINTS,
    Why,
    ask_matcher,
    diagnose,
    generator_address,
    why,
)
from kalypso.generator.operator.exiting import (
    ExitStep,
    exit_generator,
    format_time,
    node_api,
    refuse_if_running,
)
from kalypso.generator.operator.fetch import Fetched, Progress, fetch_artifacts, market_comment
from kalypso.generator.operator.status import journal_path, status_report

__all__ = [
    "DEFAULT_MATCHER_URL",
    "GROTH16_GAS_PER_SIGNAL",
    "GROTH16_VERIFY_GAS",
    "HINTS",
    "MIN_PROOF_TIME",
    "SUBMIT_GAS",
    "Benchmark",
    "ExitStep",
    "Fetched",
    "Progress",
    "Why",
    "ask_matcher",
    "benchmark",
    "connect",
    "diagnose",
    "exit_generator",
    "fetch_artifacts",
    "format_time",
    "generator_address",
    "journal_path",
    "market_comment",
    "market_id",
    "metadata",
    "node_api",
    "quantile",
    "refuse_if_running",
    "status_report",
    "submit_gas",
    "suggest_proof_time",
    "why",
]
