"""The ``nasforge`` command line. The library logs; only this package prints.

Bad input never ends in a traceback: every :class:`~nasforge.NasforgeError` (the config
loaders turn errors of user-named callables into one) becomes one ``error:`` line and
exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from nasforge import registry
from nasforge._version import __version__
from nasforge.errors import NasforgeError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nasforge`` console script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except NasforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nasforge",
        description="Neural architecture search and model compression over PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"nasforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    listing = commands.add_parser("list", help="list registered plugins")
    listing.add_argument("kind", nargs="?", choices=registry.KINDS, help="only this kind")
    listing.set_defaults(run=_list)

    demo = commands.add_parser("demo", help="train a small CNN on the embedded digits data")
    demo.add_argument("--epochs", type=int, default=15)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(run=_demo)

    compress = commands.add_parser(
        "compress",
        help="compress a model as a YAML config describes, and report before/after",
        description="Run the compression pipeline of CONFIG.yaml (model, data, trainer, "
        "compressors, measure, output sections; see docs/compression.md).",
    )
    compress.add_argument("config", help="the YAML config file")
    compress.add_argument("--report", metavar="REPORT.json", help="write the report as JSON")
    compress.set_defaults(run=_compress)

    search = commands.add_parser(
        "search",
        help="run the architecture search a YAML config describes",
        description="Search as CONFIG.yaml describes (space, data, evaluator, strategy, "
        "budget, objective, constraints, scheduler, training, warm_start, executor; or a "
        "darts run; optionally retrain the result; see docs/search.md) and write the "
        "trials (CSV, JSON), the best architecture and its weights, and plots into DIR.",
    )
    search.add_argument("config", help="the YAML config file")
    search.add_argument(
        "--out", metavar="DIR", help="output directory (default: ./<config name>-results)"
    )
    search.add_argument(
        "--resume", action="store_true", help="continue the search recorded in DIR's journal"
    )
    search.add_argument("--no-progress", action="store_true", help="hide progress bars")
    search.set_defaults(run=_search)
    return parser


def _list(args: argparse.Namespace) -> int:
    for kind in [args.kind] if args.kind else registry.KINDS:
        print(f"{kind}:")
        names = registry.available(kind)
        if not names:
            print("  (none)")
        width = max((len(n) for n in names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.summary(kind, name)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import torch
    from torch import nn

    from nasforge._seed import seed_everything
    from nasforge.data.bundle import load_dataset
    from nasforge.trainer import Trainer

    torch.set_num_threads(min(torch.get_num_threads(), 2))
    data = load_dataset("digits", seed=args.seed)
    print(f"data: {data}")
    seed_everything(args.seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, data.num_classes),
    )
    trainer = Trainer(
        data,
        epochs=args.epochs,
        lr=3e-3,
        lr_schedule="cosine",
        seed=args.seed,
        progress=False if args.no_progress else None,
    )
    history = trainer.fit(model)
    test = trainer.evaluate(model)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"trained a {params:,}-parameter CNN for {len(history)} epochs "
        f"(val accuracy {history.last['val_accuracy']:.4f})"
    )
    print(f"test accuracy: {test['accuracy']:.4f}  test macro-F1: {test['macro_f1']:.4f}")
    return 0


def _compress(args: argparse.Namespace) -> int:
    from nasforge.cli.compress import load_config, run_compress

    report = run_compress(load_config(args.config), report_path=args.report)
    print(report.table())
    for key, value in report.ratios().items():
        print(f"{key}: {value:.4g}")
    if args.report:
        print(f"report written to {args.report}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nasforge.cli.search import load_search_config
    from nasforge.cli.search_run import run

    config = load_search_config(args.config)
    out = Path(args.out) if args.out else Path.cwd() / f"{Path(args.config).stem}-results"
    progress = False if args.no_progress else None
    outcome = run(config, out, resume=args.resume, progress=progress)
    if outcome.search is not None:
        _print_search(outcome.search)
    if outcome.darts is not None:
        _print_darts(outcome.darts, reused=outcome.darts_reused)
    if outcome.retrained is not None:
        _print_retrained(outcome.retrained)
    elif config.retrain is not None and not outcome.interrupted:
        print("nothing to retrain: no trial finished", file=sys.stderr)
    print(f"results written to {out}")
    if outcome.interrupted:
        print("interrupted: continue with --resume", file=sys.stderr)
        return 130
    return 0


def _print_search(result: Any) -> None:
    from nasforge.nas.result import TrialStatus

    print(result.table())
    counts = {s.value: sum(t.status is s for t in result.trials) for s in TrialStatus}
    print(", ".join(f"{n} {k}" for k, n in counts.items() if n), f"in {result.duration:.0f} s")


def _print_darts(record: dict[str, Any], *, reused: bool) -> None:
    """The derived arch and, per choice, the chosen value's softmax weight and the
    strongest other value's."""
    epochs = len(record.get("history", []))
    how = "kept from darts.json" if reused else f"{epochs} epochs in {record['seconds']:.0f} s"
    print(f"DARTS derived {record['key']} ({how})")
    for name, weights in record["weights"].items():
        chosen = str(record["arch"][name])
        others = sorted((w, v) for v, w in weights.items() if v != chosen)
        runner_up = f"; next {others[-1][1]} {others[-1][0]:.3f}" if others else ""
        print(f"  {name}: {chosen} {weights.get(chosen, float('nan')):.3f}{runner_up}")


def _print_retrained(record: dict[str, Any]) -> None:
    metrics = record["metrics"]
    shown = [k for k in ("val_acc", "val_f1", "test_acc", "test_f1") if k in metrics]
    scores = "  ".join(f"{k} {metrics[k]:.4f}" for k in shown)
    print(
        f"retrained {record['key']} for {record['epochs']} epochs: {scores}  "
        f"params {metrics['params']:,.0f}  in {metrics['train_seconds']:.0f} s"
    )
