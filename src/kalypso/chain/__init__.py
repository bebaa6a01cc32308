"""The chain layer of the daemons: async RPC, a reorg-safe log follower, a tx sender."""

from kalypso.chain.follower import BlockRef, FollowerState, LogBatch, LogFollower, Rollback
from kalypso.chain.rpc import connect, is_transient, retrying
from kalypso.chain.sender import PendingTx, SenderPolicy, SentTx, TxSender

__all__ = [
    "BlockRef",
    "FollowerState",
    "LogBatch",
    "LogFollower",
    "PendingTx",
    "Rollback",
    "SenderPolicy",
    "SentTx",
    "TxSender",
    "connect",
    "is_transient",
    "retrying",
]
