"""Parallel trials: wall time of one CPU-bound search with the serial, process and Ray
executors on a 2-core machine, and the per-trial overhead of each.

Targets: a CPU-bound search with the ``process`` executor and 2 workers finishes at least
1.6x faster than ``serial`` on the 2-core machine (issue #5); with the ``ray`` executor on a
local 2-CPU Ray instance, at least 1.5x faster than ``serial``, with a per-trial overhead in
core-seconds at most twice the ``process`` executor's (issue #14).

The search: random strategy, seed 0, ``--trials`` small 1-D CNNs (1-2 stages of 16/32
channels, kernels 3/5, 1-2 blocks) trained ``--epochs`` epochs each on MNIST-1D (3,600
train / 400 val; Adam, lr 3e-3, cosine, batch 64) by a ``TrainEvaluator`` (so a trial
also builds the model and times its batch-1 latency), 1-4 s per trial on one thread;
no checkpoints and no test at the end. Executors:

- ``serial``: trials one after another in the driver with PyTorch's default intra-op
  thread count (printed; one per core);
- ``serial-1t``: the same with one thread (what one worker of the parallel runs gets);
- ``process``: 2 worker processes x 1 thread (the default ``deterministic=True``);
- ``process-nd``: the same with ``deterministic=False`` (results used as they arrive);
- ``ray``: a local Ray instance with 2 CPUs and 2 long-lived actors, 1 CPU and 1 thread per
  trial; Ray and its actors are started for each run (``executor.start(wait=True)``: the
  Ray processes, the actors' processes and their PyTorch import), and that start-up is
  reported apart and included in the wall time.

Every run is a fresh Python process (as when a user runs a script), so no run inherits
another's imports or warm caches; its wall time is that of ``nf.search`` (plus Ray's
start-up), after imports and data generation. Runs are interleaved (serial, serial-1t,
process, ..., serial, ...) and medians reported. Per trial: ``fit`` is the time spent in
``Trainer.fit`` (the ``train_seconds`` metric); ``task`` is each task's time as its executor
measured it (from submit to result); ``overhead`` is (workers x wall - sum of fit) / trials,
the core-seconds per trial not spent training (imports, model build, latency timing,
dispatch, idle workers); ``after start`` is the same without the one-off Ray start-up
(workers x (wall - start) - sum of fit) / trials, the cost that grows with the number of
trials; ``idle`` is (workers x wall - sum of task) / trials. Every run must
give the same trial keys (the same seed gives the same architectures whatever the
executor); that is checked and printed. Run it on an otherwise idle machine (the load
average is printed before and after).

``--dispatch MB`` measures something else: the round trip of a no-op task whose function
holds MB megabytes of tensors (as the search's task function holds the evaluator and its
data) with one ``process`` or ``ray`` worker, for the first task and then per task.

    python benchmarks/parallel.py                   # 20 trials x 15 epochs, 3 repeats
    python benchmarks/parallel.py --repeats 5 --variants serial process ray --json par.json
    python benchmarks/parallel.py --dispatch 100    # a 100 MB evaluator, per task
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = ("serial", "serial-1t", "process", "process-nd", "ray")


def run_one(variant: str, trials: int, epochs: int, workers: int, seed: int) -> dict:
    """One search in this (fresh) process; returns its timings, keys and accuracies."""
    import torch

    import nasforge as nf
    from nasforge.evaluators import TrainEvaluator

    default_threads = torch.get_num_threads()
    data = nf.load_dataset("mnist1d")
    space = nf.build("space", "cnn", max_stages=2, channels=[16, 32], kernels=[3, 5], max_blocks=2)
    evaluator = TrainEvaluator(space, data, epochs=epochs, lr=3e-3, lr_schedule="cosine")
    if variant == "serial-1t":
        torch.set_num_threads(1)
    if variant.startswith("serial"):
        workers = 1
    ray_start = 0.0
    executor: object = None
    if variant.startswith("process"):
        executor = {"name": "process", "workers": workers, "threads_per_worker": 1}
    elif variant == "ray":
        from nasforge.execution.ray import RayExecutor

        started = time.perf_counter()
        executor = RayExecutor(workers=workers, cpus_per_trial=1)
        executor.start(wait=True)  # Ray, and the actors up with PyTorch imported
        ray_start = time.perf_counter() - started
    started = time.perf_counter()
    result = nf.search(
        space,
        evaluator,
        strategy="random",
        budget=trials,
        seed=seed,
        executor=executor,
        deterministic=variant != "process-nd",
        test=False,
        progress=False,
    )
    wall = time.perf_counter() - started + ray_start
    failed = [t for t in result.trials if not t.finished]
    if failed:
        raise RuntimeError(f"{variant}: trial {failed[0].number} failed: {failed[0].error}")
    fit = sum(t.metrics["train_seconds"] for t in result.trials)
    task = sum(t.duration for t in result.trials)
    return {
        "variant": variant,
        "workers": workers,
        "default_threads": default_threads,
        "wall_seconds": wall,
        "ray_start_seconds": ray_start,
        "fit_seconds": fit,
        "task_seconds": task,
        "overhead_per_trial": (workers * wall - fit) / trials,
        "overhead_after_start": (workers * (wall - ray_start) - fit) / trials,
        "idle_per_trial": (workers * wall - task) / trials,
        "keys": [t.key for t in result.trials],
        "val_acc": [t.metrics["val_acc"] for t in result.trials],
    }


def _lookup(data: object, i: int) -> float:
    return float(data[i % len(data), 0])  # type: ignore[index, arg-type]


def dispatch_one(variant: str, megabytes: float, tasks: int = 12) -> dict:
    """Round trips of ``tasks`` tiny tasks whose function holds ``megabytes`` of tensors,
    on one worker, in this (fresh) process."""
    import functools

    import torch

    import nasforge as nf

    fn = functools.partial(_lookup, torch.rand(max(1, int(megabytes * 2**20 / 4000)), 1000))
    if variant == "process":
        executor = nf.build("executor", "process", workers=1, threads_per_worker=1)
    else:
        from nasforge.execution.ray import RayExecutor

        executor = RayExecutor(workers=1, cpus_per_trial=1)
        executor.start(wait=True)
    times = []
    with executor:
        for i in range(tasks):
            started = time.perf_counter()
            executor.submit(i, fn, i)
            (result,) = executor.wait()
            times.append(time.perf_counter() - started)
            if not result.ok:
                raise RuntimeError(f"{variant}: {result.error}")
    return {"first": times[0], "median": statistics.median(times[1:])}


def dispatch(megabytes: float) -> None:
    """Print the per-task round trips of :func:`dispatch_one`, each executor in a fresh
    process."""
    for variant in ("process", "ray"):
        child = subprocess.run(
            [sys.executable, __file__, "--one", variant, "--dispatch", str(megabytes)],
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            raise RuntimeError(f"{variant} failed:\n{child.stderr}")
        out = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{variant:<8} a function holding {megabytes:g} MB of tensors: first task "
            f"{out['first']:.2f} s, then {1000 * out['median']:.1f} ms a task",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--dispatch", type=float, metavar="MB", help="see the docstring")
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args()
    if args.dispatch is not None:
        if args.one:
            print(json.dumps(dispatch_one(args.one, args.dispatch)))
        else:
            dispatch(args.dispatch)
        return
    if args.one:
        out = run_one(args.one, args.trials, args.epochs, args.workers, args.seed)
        print(json.dumps(out))
        return

    load_before = os.getloadavg()
    common = ["--trials", str(args.trials), "--epochs", str(args.epochs)]
    common += ["--workers", str(args.workers), "--seed", str(args.seed)]
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    for repeat in range(args.repeats):
        for variant in args.variants:
            child = subprocess.run(
                [sys.executable, __file__, "--one", variant, *common],
                capture_output=True,
                text=True,
            )
            if child.returncode != 0:
                raise RuntimeError(f"{variant} failed:\n{child.stderr}")
            out = json.loads(child.stdout.strip().splitlines()[-1])
            runs[variant].append(out)
            print(
                f"repeat {repeat}: {variant:<12} wall {out['wall_seconds']:6.1f} s "
                f"(fit {out['fit_seconds']:.1f} s)",
                flush=True,
            )
    load_after = os.getloadavg()

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[variant])

    first = next(iter(runs.values()))[0]
    same_keys = all(r["keys"] == first["keys"] for rs in runs.values() for r in rs)
    serial = median("serial", "wall_seconds") if "serial" in runs else None
    print()
    print(
        f"MNIST-1D, random search, {args.trials} trials x {args.epochs} epochs, seed "
        f"{args.seed}; {os.cpu_count()} CPUs, torch default threads "
        f"{first['default_threads']}; medians of {args.repeats} interleaved runs, each in a "
        f"fresh process; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    print(
        f"{'executor':<13} {'workers':>7} {'wall s':>7} {'speedup':>7} {'fit s':>7} "
        f"{'task s':>7} {'overhead/trial core-s':>21} {'after start':>11} {'idle/trial s':>12} "
        f"{'start s':>7}"
    )
    keys = (
        "wall_seconds",
        "fit_seconds",
        "task_seconds",
        "overhead_per_trial",
        "overhead_after_start",
        "idle_per_trial",
        "ray_start_seconds",
    )
    rows = []
    for variant in args.variants:
        row = {"variant": variant, "workers": runs[variant][0]["workers"]}
        row.update({k: median(variant, k) for k in keys})
        row["speedup"] = serial / row["wall_seconds"] if serial else None
        rows.append(row)
        speedup = f"{row['speedup']:.2f}x" if row["speedup"] else "-"
        print(
            f"{variant:<13} {row['workers']:>7} {row['wall_seconds']:>7.1f} {speedup:>7} "
            f"{row['fit_seconds']:>7.1f} {row['task_seconds']:>7.1f} "
            f"{row['overhead_per_trial']:>21.2f} {row['overhead_after_start']:>11.2f} "
            f"{row['idle_per_trial']:>12.2f} {row['ray_start_seconds']:>7.1f}"
        )
    print(f"same trial keys in every run: {same_keys}")
    for a, b in (("serial", "serial-1t"), ("serial-1t", "process"), ("process", "ray")):
        if a in runs and b in runs:
            pairs = zip(runs[a][0]["val_acc"], runs[b][0]["val_acc"], strict=True)
            diff = max(abs(x - y) for x, y in pairs)
            print(f"max |val_acc difference| {a} vs {b}: {diff:.4f}")
    if "process" in runs and "ray" in runs:
        extra = (median("ray", "wall_seconds") - median("process", "wall_seconds")) / args.trials
        print(
            f"ray vs process: {extra:+.2f} s of wall time per trial (Ray start-up "
            f"{median('ray', 'ray_start_seconds'):.1f} s included)"
        )
    if serial and "process" in runs:
        speedup = serial / median("process", "wall_seconds")
        print(
            f"process ({args.workers} workers) vs serial: {speedup:.2f}x; target >= 1.6x: "
            f"{'met' if speedup >= 1.6 else 'MISSED'}"
        )
    if serial and "ray" in runs:
        wall, start = median("ray", "wall_seconds"), median("ray", "ray_start_seconds")
        speedup, steady = serial / wall, serial / (wall - start)
        print(
            f"ray ({args.workers} actors) vs serial: {speedup:.2f}x ({steady:.2f}x without its "
            f"{start:.1f} s start-up); target >= 1.5x: "
            f"{'met' if speedup >= 1.5 else 'MISSED'}"
        )
    if "process" in runs and "ray" in runs:
        ray, process = median("ray", "overhead_per_trial"), median("process", "overhead_per_trial")
        after = median("ray", "overhead_after_start")
        print(
            f"overhead per trial: ray {ray:.2f} core-s ({after:.2f} after its start-up), "
            f"process {process:.2f}; ray / process {ray / process:.2f} "
            f"({after / process:.2f} after start-up); target <= 2: "
            f"{'met' if ray <= 2 * process else 'MISSED'}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "settings": vars(args),
                    "load_before": load_before,
                    "load_after": load_after,
                    "same_keys": same_keys,
                    "rows": rows,
                    "runs": runs,
                },
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
