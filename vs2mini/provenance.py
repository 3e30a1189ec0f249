"""What produced a result file: versions, profile, seed, commit and units, stored beside the numbers."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

UNITS = "top-1 %"     # every accuracy and delta in a result file


def git_commit(where: Path | None = None) -> str | None:
    """The commit of the git checkout that holds the package (an editable install), or None (a wheel, no git)."""
    where = where or Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def provenance(profile: str | None, seed: int | None) -> dict:
    """{"vs2mini", "torch", "open_clip", "python", "profile", "seed", "commit", "units"} of this run."""
    import open_clip
    import torch

    from . import __version__
    return {"vs2mini": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "python": platform.python_version(), "profile": profile, "seed": seed, "commit": git_commit(),
            "units": UNITS}


def stamp(obj, profile=None, prov: dict | None = None):
    """A command's JSON result with the provenance of a run of `profile` (a config.Profile) added: to a dict, or to
    each dict of a list (the shape is kept). Without a profile (pretrain-toy) or for text, `obj` unchanged."""
    if profile is None and prov is None:
        return obj
    prov = prov or provenance(profile.name, profile.train.seed)
    if isinstance(obj, dict):
        return {**obj, "provenance": prov}
    if isinstance(obj, list):
        return [stamp(o, prov=prov) for o in obj]
    return obj
