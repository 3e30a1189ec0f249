"""Where datasets, feature caches and run outputs live (override with environment variables)."""
from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Datasets: $VS2MINI_DATA, default ./data."""
    return Path(os.environ.get("VS2MINI_DATA") or "data").expanduser()


def cache_root() -> Path:
    """Feature caches: $VS2MINI_CACHE, default ./.vs2mini/cache."""
    return Path(os.environ.get("VS2MINI_CACHE") or ".vs2mini/cache").expanduser()      # unset or empty: default
