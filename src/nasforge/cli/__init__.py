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

DEMO_DESCRIPTION = """\
The main job of nasforge in one run, on the digits data that ships with it:

  1. search a CNN space for validation accuracy against measured batch-1 latency
     (nsga2, every candidate trained, two worker processes);
  2. pick the most accurate architecture within --latency-budget of the most
     accurate one's latency, distil into it from the most accurate model
     (--teacher ensemble: the top-3 ensemble), prune --prune-ratio of its
     channels, distil again, and quantize it to int8 (kept only if faster);
  3. print accuracy, parameters, size and latency before and after, and write
     the trials, results.json, the final model (final_model.ts, TorchScript)
     and a Pareto plot (with matplotlib) into --out.

Other data: --data mnist1d, or --data mypackage.data:load for a function taking
seed= and returning an nf.DataBundle with a test split (docs/data.md).
"""


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

    _add_demo(commands)

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


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="search, distil, prune and quantize a CNN on the embedded digits (~1 min)",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--data",
        default="digits",
        help="a registered dataset (digits, mnist1d, synthetic, or your own registered with "
        "@nf.register('dataset', name)) or package.module:function returning a DataBundle "
        "with a test split (default: digits)",
    )
    demo.add_argument("--out", default="nasforge-demo", help="output directory")
    demo.add_argument("--budget", type=int, default=24, help="architectures trained")
    demo.add_argument("--epochs", type=int, default=10, help="epochs per architecture")
    demo.add_argument(
        "--latency-budget",
        type=float,
        default=0.5,
        help="the picked model's batch-1 latency, at most this fraction of the most "
        "accurate one's (default 0.5)",
    )
    demo.add_argument("--prune-ratio", type=float, default=0.5, help="channels pruned")
    demo.add_argument("--distill-epochs", type=int, default=10)
    demo.add_argument(
        "--teacher",
        choices=("best", "ensemble"),
        default="best",
        help="distil from the most accurate model or the top-3 ensemble",
    )
    demo.add_argument("--workers", type=int, default=2, help="training processes")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(run=_demo)


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
    from nasforge.cli.demo import run_demo

    demo = run_demo(
        args.data,
        out=args.out,
        budget=args.budget,
        epochs=args.epochs,
        latency_budget=args.latency_budget,
        prune_ratio=args.prune_ratio,
        distill_epochs=args.distill_epochs,
        teacher=args.teacher,
        workers=args.workers,
        seed=args.seed,
        progress=False if args.no_progress else None,
    )
    print(demo.table())
    print(f"done in {demo.seconds:.0f} s; results written to {args.out}/:")
    for kind, path in demo.files.items():
        print(f"  {kind}: {path}")
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
