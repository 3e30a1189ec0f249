"""Datasets and caches default to the user's cache folder; the environment variables win."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vs2mini import config as paths


@pytest.fixture
def clean_env(monkeypatch):
    for name in (paths.DATA_ENV, paths.CACHE_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is the Linux convention")
def test_defaults_live_in_the_xdg_cache(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.data_root() == tmp_path / "vs2mini" / "data"
    assert paths.cache_root() == tmp_path / "vs2mini" / "features"
    clean_env.delenv("XDG_CACHE_HOME")
    assert paths.data_root() == Path.home() / ".cache" / "vs2mini" / "data"


def test_defaults_do_not_depend_on_the_working_directory(clean_env, tmp_path):
    here = (paths.data_root(), paths.cache_root())
    clean_env.chdir(tmp_path)
    assert (paths.data_root(), paths.cache_root()) == here and all(p.is_absolute() for p in here)
    assert paths.data_root() != paths.cache_root()


def test_environment_variables_win(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clean_env.setenv(paths.DATA_ENV, str(tmp_path / "d"))
    clean_env.setenv(paths.CACHE_ENV, "~/c")
    assert paths.data_root() == tmp_path / "d"
    assert paths.cache_root() == Path.home() / "c"                      # ~ is expanded
    clean_env.setenv(paths.DATA_ENV, "")                                 # empty: the default
    assert paths.data_root() == paths.user_cache() / "data"
