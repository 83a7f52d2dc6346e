"""Trade accuracy against CPU latency with NSGA-II (or ParEGO) on MNIST-1D.

Two objectives, ``val_acc`` (max) and ``latency_ms`` (min): there is no single best
architecture, so the search returns the Pareto front (no other trial is both more accurate
and faster) and its hypervolume. The front's architectures get test scores at the end.
Saves ``pareto.png`` when matplotlib is installed. About a minute on one CPU core (needs
``pip install mnist1d``); ``--strategy bayesian`` searches with ParEGO, the Gaussian
process over a randomly weighted scalarisation of the objectives. It checks that no trial
dominates one on the front, that every trial off the front is dominated, and that the
front's architectures got test scores. ``--quick`` (or ``NASFORGE_QUICK=1``) trains 8
trials for one epoch on a tenth of the data:

    python examples/search_multi_objective.py [--strategy bayesian] [--quick]
"""

import argparse
import os
import tempfile
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def dominates(a: nf.Trial, b: nf.Trial) -> bool:
    """``a`` is at least as accurate and as fast as ``b``, and better in one of the two."""
    a_acc, a_ms = a.metrics["val_acc"], a.metrics["latency_ms"]
    b_acc, b_ms = b.metrics["val_acc"], b.metrics["latency_ms"]
    return a_acc >= b_acc and a_ms <= b_ms and (a_acc > b_acc or a_ms < b_ms)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=["nsga2", "bayesian", "random"], default="nsga2")
    parser.add_argument("--quick", action="store_true", default=QUICK, help="run in seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="nasforge-pareto-"))
    space = nf.build("space", "cnn", max_stages=2, channels=(8, 16, 32, 64))
    data = nf.load_dataset("mnist1d", num_samples=500) if args.quick else "mnist1d"
    evaluator = nf.TrainEvaluator(
        space,
        data,
        epochs=1 if args.quick else 3,
        lr=3e-3,
        lr_schedule="cosine",
        latency={"batch_size": 1, "threads": 1, "repeats": 10 if args.quick else 30},
        checkpoint_dir=workdir / "checkpoints",
        seed=0,
    )
    nsga2_options = {"population_size": 4 if args.quick else 8}
    result = nf.search(
        space,
        evaluator,
        strategy=args.strategy,
        strategy_options=nsga2_options if args.strategy == "nsga2" else None,
        budget=8 if args.quick else 20,
        seed=0,
        objective=["val_acc", "latency_ms"],
        mode=["max", "min"],
        progress=False,
    )

    front = sorted(result.pareto_front(), key=lambda t: t.metrics["latency_ms"])
    print(f"Pareto front: {len(front)} of {len(result.finished)} finished trials")
    print(" trial  val_acc  test_acc  latency_ms   params  arch")
    for t in front:
        m = t.metrics
        print(
            f"{t.number:6d}  {m['val_acc']:7.3f}  {m['test_acc']:8.3f}  {m['latency_ms']:10.3f}"
            f"  {m['params']:7,.0f}  {t.key}"
        )
    # The reference point is the worst acceptable value of each objective, in their own
    # units: 0 accuracy and 1 ms. A larger hypervolume is a better front.
    print(f"hypervolume against (val_acc 0, latency 1 ms): {result.hypervolume([0.0, 1.0]):.4f}")

    # The front: no finished trial dominates one on it; every trial off it is dominated.
    assert front, "an empty Pareto front"
    for t in result.finished:
        dominated = any(dominates(other, t) for other in result.finished)
        assert dominated is not (t in front), f"trial {t.number}: dominated={dominated}"
    assert all("test_acc" in t.metrics for t in front), "the front gets test scores"

    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'nasforge[plots]')")
        return
    matplotlib.use("Agg")
    ax = result.plot_pareto()  # x: val_acc, y: latency_ms
    ax.figure.savefig(workdir / "pareto.png", dpi=120, bbox_inches="tight")
    assert (workdir / "pareto.png").stat().st_size > 0
    print(f"plot: {workdir / 'pareto.png'}")


if __name__ == "__main__":
    main()
