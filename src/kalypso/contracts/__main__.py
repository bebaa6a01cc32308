"""`python -m kalypso.contracts [--force]`: compile the contracts and print their sizes."""

import sys

from kalypso.contracts import CONTRACTS, artifact, build

build(force="--force" in sys.argv, echo=True)
for name in CONTRACTS:
    print(f"{name:24} {artifact(name).runtime_size:>6} bytes")
