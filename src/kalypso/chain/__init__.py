"""The chain layer of the daemons: async RPC, a reorg-safe log follower, a tx sender."""

from kalypso.chain.follower import BlockRef, FollowerState, LogBatch, LogFollower, Rollback
from kalypso.chain.lookup import RequestRecord, find_request
from kalypso.chain.rpc import connect, known_block
from kalypso.chain.sender import PendingTx, SenderPolicy, SentTx, TxSender

__all__ = [
    "BlockRef",
    "FollowerState",
    "LogBatch",
    "LogFollower",
    "PendingTx",
    "RequestRecord",
    "Rollback",
    "SenderPolicy",
    "SentTx",
    "TxSender",
    "connect",
    "find_request",
    "known_block",
]
