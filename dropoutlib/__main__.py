"""The command line: ``python -m dropoutlib COMMAND ...`` (also the ``dropoutlib`` script).

    python -m dropoutlib train --preset v10 --corpus song_ci --dropout 0.2 [--max-iters N ...]
    python -m dropoutlib experiment v10-songci-dropout --profile cpu [--output results/x.json]
    torchrun --nproc_per_node=2 -m dropoutlib train --preset v10 --corpus song_ci
    python -m dropoutlib grade submissions/ --timeout 600 --out grades/

Each command is an entry of :data:`COMMANDS`: a function that adds its arguments to a subparser
and a function that runs it. A new command (``bench``) adds one entry.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

PRESETS = ("v10", "v11", "gpt")


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE``, VALUE parsed as JSON when it is JSON (``0.1``, ``[0.1,0.2]``, ``null``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _replace(config, pairs, what: str):
    names = {f.name for f in dataclasses.fields(config)}
    for key, _ in pairs:
        if key not in names:
            raise SystemExit(
                f"error: {what} has no field {key!r}; fields: {', '.join(sorted(names))}"
            )
    try:
        return dataclasses.replace(config, **dict(pairs))
    except (TypeError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None


# --- train -------------------------------------------------------------------------------------


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="v10",
        help="v10: babyGPT v10; v11: babyGPT v11 (gpt.py scale, lr 3e-4, batch 64); "
        "gpt: Karpathy's gpt.py (v11 model, eval 500/200, seed 1337)",
    )
    from dropoutlib.data import CORPORA

    p.add_argument("--corpus", choices=CORPORA, default="song_ci")
    p.add_argument("--dropout", type=float, help="the rate at every default dropout site")
    p.add_argument("--attention", choices=("heads", "fused"), help="attention implementation")
    p.add_argument("--max-iters", type=int)
    p.add_argument("--eval-interval", type=int)
    p.add_argument("--eval-iters", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, dest="learning_rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--checkpoint-interval", type=int, help="steps between checkpoints (0: none)")
    p.add_argument(
        "--model",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="set any GPTConfig field (JSON value), e.g. --model embd_dropout=0.1",
    )
    p.add_argument(
        "--train",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="set any TrainConfig field (JSON value), e.g. --train train_tokens=50000 "
        '--train \'dropout_schedule={"name": "linear", "p": 0.1, "every": "epoch"}\' '
        '--train init_from=<key> --train \'lora={"r": 8, "dropout": 0.05}\'',
    )
    p.add_argument("--out-dir", help="directory of this run (default: the run cache)")
    p.add_argument("--no-cache", action="store_true", help="train even if the run is cached")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_train(args: argparse.Namespace) -> int:
    from dropoutlib.model import GPTConfig
    from dropoutlib.train import TrainConfig, train, vocab_size

    vocab = vocab_size(args.corpus)
    if args.preset == "v10":
        model = GPTConfig.v10(vocab)
    else:  # babyGPT v11 keeps PyTorch's default init; gpt.py initialises from N(0, 0.02)
        model = GPTConfig.v11(vocab, init="gpt2" if args.preset == "gpt" else "pytorch")
    tc = {"v10": TrainConfig.v10, "v11": TrainConfig.v11, "gpt": TrainConfig.gpt}[args.preset]()
    if args.corpus == "shakespeare" and args.preset != "gpt":
        tc = dataclasses.replace(tc, prompts=("\n",))  # 春江 / 往事 are not in its vocabulary
    if args.corpus != "shakespeare" and args.preset == "gpt":
        tc = dataclasses.replace(tc, prompts=("春江", "往事"))

    model_pairs = [("dropout", args.dropout), ("attention", args.attention)]
    model = _replace(
        model, [(k, v) for k, v in model_pairs if v is not None] + args.model, "GPTConfig"
    )
    train_pairs = [
        (name, getattr(args, name))
        for name in (
            "max_iters",
            "eval_interval",
            "eval_iters",
            "batch_size",
            "learning_rate",
            "seed",
            "device",
            "dtype",
            "compile",
            "checkpoint_interval",
        )
    ]
    tc = _replace(tc, [(k, v) for k, v in train_pairs if v is not None] + args.train, "TrainConfig")

    try:
        result = train(
            model,
            tc,
            args.corpus,
            cache=not args.no_cache,
            progress=not args.quiet,
            out_dir=args.out_dir,
            resume=not args.no_resume,
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = result.final
    trainable = result.trainable_params
    params = f"{result.num_params:,} parameters"
    if trainable is not None and trainable != result.num_params:
        params += f" ({trainable:,} trainable)"
    print(f"run {result.key}: {params}, {result.device}, {result.world_size} rank(s)")
    epoch = last.get("epoch", float("nan"))
    print(
        f"step {last['step']} (epoch {epoch:.2f}): train loss {last['train_loss']:.4f}, "
        f"val loss {last['val_loss']:.4f}"
    )
    print(f"wall time {result.wall_time_s:.1f} s, {result.tokens_per_sec:,.0f} tokens/s")
    for prompt, text in result.samples.items():
        print(f"--- sample from {prompt!r}:\n{text}")
    print(f"results: {result.run_dir / 'result.json'}")
    return 0


def _shell_command(argv: list[str], drop: str) -> str:
    """``argv`` quoted for a shell, without option ``drop`` and its value."""
    import shlex

    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == drop:
            skip = True
        elif not arg.startswith(drop + "="):
            kept.append(arg)
    return shlex.join(kept)


# --- experiment --------------------------------------------------------------------------------


def _add_experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="experiment name (see --list)")
    p.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default)")
    p.add_argument("--output", help="also write every run of the experiment to this JSON file")
    p.add_argument("--comment", default="", help="a remark stored in the --output file")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _cmd_experiment(args: argparse.Namespace) -> int:
    from dropoutlib import __version__
    from dropoutlib.experiments import EXPERIMENTS, resolve_profile, run

    if args.list or args.name is None:
        for name, fn in EXPERIMENTS.items():
            doc = (fn.__doc__ or "").strip().split("\n")[0]
            print(f"{name}: {doc}")
        return 0
    try:
        profile = resolve_profile(args.profile)
        results = run(args.name, profile, progress=not args.quiet)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{args.name} ({profile} profile)")
    for label, r in results.items():
        last = r.final
        print(
            f"  {label:>14}: step {last['step']}: train {last['train_loss']:.4f}, "
            f"val {last['val_loss']:.4f}, {r.wall_time_s:.1f} s  [{r.run_dir / 'result.json'}]"
        )
    notes = {r.note for r in results.values() if r.note}
    for note in notes:
        print(f"  note: {note}")
    if args.output:
        import torch

        doc = {
            "experiment": args.name,
            "profile": profile,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
            "dropoutlib_version": __version__,
            "command": "python -m dropoutlib " + _shell_command(args.argv, drop="--comment"),
            "comment": args.comment,
            "runs": {label: {"note": r.note, **r.to_dict()} for label, r in results.items()},
        }
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"written: {out}")
    return 0


# --- bench -------------------------------------------------------------------------------------


def _add_bench_args(p: argparse.ArgumentParser) -> None:
    from dropoutlib.bench import add_arguments

    add_arguments(p)


def _cmd_bench(args: argparse.Namespace) -> int:
    from dropoutlib.bench import run_from_args

    return run_from_args(args)


# --- grade -------------------------------------------------------------------------------------


def _add_grade_args(p: argparse.ArgumentParser) -> None:
    from dropoutlib.grade import add_arguments

    add_arguments(p)


def _cmd_grade(args: argparse.Namespace) -> int:
    from dropoutlib.grade import run_from_args

    return run_from_args(args)


# --- dispatch ----------------------------------------------------------------------------------

#: name -> (help, add_arguments(parser), run(args) -> exit code). Add new commands here.
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "train": ("train babyGPT (cached, resumable, torchrun-aware)", _add_train_args, _cmd_train),
    "experiment": ("run a named experiment of the course", _add_experiment_args, _cmd_experiment),
    "bench": (
        "measure what dropout costs (writes results/bench-<device>.json)",
        _add_bench_args,
        _cmd_bench,
    ),
    "grade": (
        "execute student notebooks (smoke profile, time limit, no network) and collect the "
        "checkers' verdicts into grades.csv",
        _add_grade_args,
        _cmd_grade,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dropoutlib", description="Dropout in LLMs: dropoutlib.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, run_fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(func=run_fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
