"""Kalypso: an open, decentralized marketplace for zero-knowledge proofs."""

from kalypso.errors import ContractError, KalypsoError

__version__ = "0.1.0"

__all__ = ["ContractError", "KalypsoError", "__version__"]
