"""Benchmarks: `make bench` prints one table, each figure beside a baseline measured in the same run."""

import sys
from pathlib import Path

_LAYER = Path(__file__).resolve().parent.parent / "layers" / "referrals"
if str(_LAYER) not in sys.path:  # the domain package, as the functions see it from their layer
    sys.path.insert(0, str(_LAYER))
