"""Where datasets and feature caches live: the user's cache folder, unless an environment variable says otherwise.

One copy for the command line and every notebook folder (a path relative to the working directory would download
and encode everything again in each folder). $VS2MINI_DATA and $VS2MINI_CACHE always win.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV, CACHE_ENV = "VS2MINI_DATA", "VS2MINI_CACHE"


def user_cache() -> Path:
    """vs2mini's folder in the user's cache: ~/.cache/vs2mini on Linux ($XDG_CACHE_HOME/vs2mini if that is set),
    ~/Library/Caches/vs2mini on macOS, %LOCALAPPDATA%\\vs2mini\\Cache on Windows (platformdirs)."""
    from platformdirs import user_cache_path
    return user_cache_path("vs2mini", appauthor=False)


def data_root() -> Path:
    """Datasets: $VS2MINI_DATA, default <user cache>/vs2mini/data."""
    env = os.environ.get(DATA_ENV)                                          # unset or empty: default
    return Path(env).expanduser() if env else user_cache() / "data"


def cache_root() -> Path:
    """Feature caches: $VS2MINI_CACHE, default <user cache>/vs2mini/features."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else user_cache() / "features"
