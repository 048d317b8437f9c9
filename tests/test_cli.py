"""python -m dropoutlib: the train and experiment commands (in process; the subprocess path is
exercised by tests/test_train.py's kill-and-resume and torchrun tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import dropoutlib.__main__ as cli
import dropoutlib.experiments as E
from dropoutlib.train import load_run

pytestmark = pytest.mark.usefixtures("isolated_run_cache")


TINY = ["--corpus", "shakespeare", "--model", "n_embd=16", "--model", "n_head=2"]
TINY += ["--model", "n_layer=2", "--max-iters", "6", "--eval-interval", "3"]
TINY += ["--eval-iters", "2", "--batch-size", "4", "--device", "cpu", "--quiet"]


def test_commands_are_registered():
    assert set(cli.COMMANDS) >= {"train", "experiment"}
    parser = cli.build_parser()
    assert parser.parse_args(["train"]).func is cli._cmd_train
    with pytest.raises(SystemExit):
        parser.parse_args([])  # a command is required


def test_train_prints_losses_and_where_the_results_are(capsys):
    assert cli.main(["train", "--preset", "v10", "--dropout", "0.1", *TINY]) == 0
    out = capsys.readouterr().out
    path = Path(re.search(r"^results: (.+)$", out, re.M).group(1))
    result = load_run(path)
    assert result.model_config["dropout"] == 0.1 and result.model_config["n_embd"] == 16
    assert result.train_config["max_iters"] == 6
    assert result.train_config["learning_rate"] == 1e-2  # the v10 preset
    assert result.train_config["prompts"] == ["\n"]  # 春江 is not Shakespeare
    final = result.final
    assert f"train loss {final['train_loss']:.4f}, val loss {final['val_loss']:.4f}" in out


def test_train_options_reach_the_configs(capsys):
    args = ["train", "--preset", "gpt", "--attention", "fused", "--lr", "0.002", *TINY]
    args += ["--model", "n_layer=1", "--model", 'attn_kind="drophead"', "--train", "seed=5"]
    assert cli.main(args) == 0
    path = re.search(r"^results: (.+)$", capsys.readouterr().out, re.M).group(1)
    r = load_run(path)
    assert r.model_config["attention"] == "fused" and r.model_config["n_layer"] == 1
    assert r.model_config["attn_kind"] == "drophead" and r.model_config["init"] == "gpt2"
    assert r.train_config["learning_rate"] == 0.002 and r.train_config["seed"] == 5
    assert r.train_config["eval_iters"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "n_embed=32"], "GPTConfig has no field 'n_embed'"),
        (["--train", "lr=0.1"], "TrainConfig has no field 'lr'"),
        (["--dropout", "1.5"], "dropout"),
        (["--model", "n_head=3"], "n_embd must be divisible by n_head"),
        (["--max-iters", "-1"], "max_iters must be an integer >= 0"),
    ],
)
def test_train_bad_options_exit_with_a_message(args, message):
    with pytest.raises(SystemExit, match=message):
        cli.main(["train", *TINY, *args])


def test_experiment_list_and_run_with_output(tmp_path, capsys):
    assert cli.main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in E.EXPERIMENTS)

    output = tmp_path / "results" / "smoke.json"
    args = ["experiment", "gpt-shakespeare-dropout", "--profile", "smoke", "--quiet"]
    assert cli.main([*args, "--output", str(output), "--comment", "a busy machine"]) == 0
    out = capsys.readouterr().out
    assert "gpt-shakespeare-dropout (smoke profile)" in out and "dropout 0.2" in out
    doc = json.loads(output.read_text(encoding="utf-8"))
    assert doc["profile"] == "smoke" and doc["torch_version"] == torch.__version__
    assert doc["comment"] == "a busy machine" and doc["experiment"] == "gpt-shakespeare-dropout"
    assert doc["command"] == f"python -m dropoutlib {' '.join(args)} --output {output}"
    assert list(doc["runs"]) == ["dropout 0.2", "dropout 0.0"]
    assert all(run["note"] for run in doc["runs"].values())

    with pytest.raises(SystemExit, match="profile must be one of"):
        cli.main(["experiment", "gpt-shakespeare-dropout", "--profile", "huge"])
    with pytest.raises(SystemExit, match="unknown experiment"):
        cli.main(["experiment", "nope", "--profile", "smoke"])
