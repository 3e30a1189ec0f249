"""The first cell of every notebook: pick the device and the profile, and say which."""
from __future__ import annotations

import os

import torch

from .clip import hub_reachable
from .profiles import PROFILE_ENV, get_profile


def choose_profile() -> str:
    """$VS2MINI_PROFILE if set; else `full` on a GPU with internet, `lite` on a CPU with internet, `smoke` offline."""
    if os.environ.get(PROFILE_ENV):
        return get_profile(os.environ[PROFILE_ENV]).name
    if not hub_reachable():
        return "smoke"
    return "full" if torch.cuda.is_available() else "lite"


def start(verbose: bool = True) -> str:
    """Choose the profile, export it (so every later call sees it) and print the device and the profile."""
    name = choose_profile()
    os.environ[PROFILE_ENV] = name
    if verbose:
        dev = f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU (no GPU found)"
        print(f"vs2mini profile: {name}   device: {dev}   torch {torch.__version__}")
        print(get_profile(name).banner)
        if name == "smoke":
            print("Offline smoke profile: numbers and figures below are NOT real results. "
                  f"Set {PROFILE_ENV}=full on a GPU with internet for the paper's setting.")
    return name
