"""The next faults a user meets, handled like the others: Ctrl-C, a zero or negative network time-out, a
$VS2MINI_TOY_WEIGHTS that points nowhere."""
from __future__ import annotations

import pytest

from vs2mini import cli
from vs2mini.clip import toyclip as pretrain
from vs2mini.data import download as net
from vs2mini.cli import main


def test_ctrl_c_is_one_line_and_keeps_what_was_written(tmp_path, monkeypatch, capsys):
    def interrupted(args):
        cli._write_json(args.json, [{"dataset": "toy"}], quiet=True)     # a first dataset finished
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_reproduce", interrupted)
    out = tmp_path / "r.json"
    assert main(["reproduce", "--profile", "toy", "--json", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted; results finished so far are in {out}" and out.is_file()


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan"])
def test_network_time_out_must_be_positive(monkeypatch, value):
    monkeypatch.setenv(net.TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=net.TIMEOUT_ENV):
        net.timeout_s()


def test_toy_weights_variable_pointing_nowhere(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope.safetensors"
    monkeypatch.setenv(pretrain.TOY_WEIGHTS_ENV, str(missing))
    assert main(["zeroshot", "--profile", "toy", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "pretrain-toy" in err and err.count("\n") == 0
