"""Search on a CSV file with TensorBoard tracking, from Python and from a YAML config.

Writes the embedded 8x8 digits as a CSV file (64 pixel columns and a ``digit`` column of
names, ``"zero"`` ... ``"nine"``), then:

1. Python: ``nf.load_dataset("csv", ...)`` and ``nf.search`` with a
   ``nf.TensorBoardTracker``; the class names come back in ``DataBundle.classes``;
2. YAML: the same search as ``nasforge search config.yaml``, with ``trackers:``; the best
   trial's ``best.json`` keeps the class names, so its predictions can be read as the
   CSV's labels.

It checks that the label names survive both routes and that TensorBoard wrote one run per
trial. Needs ``pip install "nasforge[tensorboard]"``. About a minute on two CPU cores;
``NASFORGE_QUICK=1`` trains 2 architectures for one epoch. Look at the runs with
``tensorboard --logdir <the printed directory>``.

    python examples/search_csv_tracked.py
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
BUDGET = 2 if QUICK else 6
EPOCHS = 1 if QUICK else 5

CONFIG = f"""\
space: {{name: mlp, options: {{max_depth: 2, widths: [32, 64, 128]}}}}
data: {{name: csv, options: {{path: digits.csv, target: digit, standardize: true}}}}
strategy: random
budget: {BUDGET}
seed: 0
training: {{epochs: {EPOCHS}, lr: 0.003, batch_size: 64, latency: false}}
trackers:
  - {{name: tensorboard, options: {{log_dir: tb}}}}   # relative to the output directory
"""


def write_csv(path: Path) -> None:
    """The digits as a user's CSV: a header, pixel columns, the label as a name."""
    data = nf.load_dataset("digits", val_fraction=0.0, test_fraction=0.0)
    x, y = data.train.tensors
    x = x.flatten(1)  # (N, 1, 8, 8) images -> 64 pixel columns
    rows = [",".join([*(f"p{i}" for i in range(x.shape[1])), "digit"])]
    rows += [
        ",".join([*(f"{v:g}" for v in pixels.tolist()), NAMES[label]])
        for pixels, label in zip(x, y.tolist(), strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def csv_options(workdir: Path) -> dict:
    """The options of the config's ``data:`` entry."""
    return {"path": workdir / "digits.csv", "target": "digit", "standardize": True}


def from_python(workdir: Path) -> None:
    data = nf.load_dataset("csv", **csv_options(workdir))
    print(data, data.classes[:3], "...")
    assert data.classes == tuple(sorted(NAMES))  # names sorted: class i is classes[i]
    space = nf.build("space", "mlp", max_depth=2, widths=[32, 64, 128])
    evaluator = nf.TrainEvaluator(space, data, epochs=EPOCHS, lr=3e-3, latency=False, seed=0)
    tracker = nf.TensorBoardTracker(workdir / "tb-python")
    result = nf.search(
        space, evaluator, strategy="random", budget=BUDGET, seed=0,
        callbacks=[tracker], progress=False,
    )  # fmt: skip
    print(f"python: best val_acc {result.best.metrics['val_acc']:.3f}  {result.best.key}")
    runs = sorted(p.name for p in (workdir / "tb-python").glob("trial-*"))
    assert len(runs) == BUDGET, runs  # one TensorBoard run per trial


def from_yaml(workdir: Path) -> None:
    (workdir / "config.yaml").write_text(CONFIG)
    command = [sys.executable, "-m", "nasforge", "search", "config.yaml", "--out", "out"]
    subprocess.run([*command, "--no-progress"], cwd=workdir, check=True)
    best = json.loads((workdir / "out" / "best.json").read_text())
    assert best["classes"] == sorted(NAMES)
    assert len(list((workdir / "out" / "tb").glob("trial-*"))) == BUDGET

    # the saved model, rebuilt, predicts the CSV's own labels
    space = nf.Space.from_dict(best["space"])
    model = space.build(space.from_key(best["key"]), input_shape=(64,), num_classes=10)
    model = nf.load_model(workdir / "out" / "best_model.pt", model=model).eval()
    data = nf.load_dataset("csv", **csv_options(workdir))
    x, y = data.test.tensors
    with torch.no_grad():
        predicted = [best["classes"][i] for i in model(x).argmax(1).tolist()]
    truth = [data.classes[i] for i in y.tolist()]
    hits = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    print(f"yaml: predicts {predicted[:3]} for {truth[:3]}...; test accuracy {hits:.3f}")
    assert hits >= 0.6  # chance: 0.1


def main() -> None:
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="nasforge-csv-"))
    write_csv(workdir / "digits.csv")
    from_python(workdir)
    from_yaml(workdir)
    print(f"TensorBoard runs: tensorboard --logdir {workdir}")


if __name__ == "__main__":
    main()
