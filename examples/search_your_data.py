"""Search architectures on your own data: numpy arrays, tensors, Datasets or DataLoaders.

The same digits, handed over in three forms a user is likely to have:

1. feature vectors in numpy arrays ``(N, 64)`` -> the ``mlp`` space;
2. the same vectors read as 1-D signals of length 64 -> the ``cnn`` space (it adds a
   channel axis in front of the model, so the model still takes ``(N, 64)``; a flattened
   image makes a poor signal, so expect lower accuracy: this shows the form, not a recipe);
3. images ``(N, 1, 8, 8)`` in a ``DataLoader`` for training and a ``TensorDataset`` for
   validation -> the ``cnn`` space, with 2-D convolutions.

It checks that each form is read with the right sample shape and that every trained
architecture keeps to the parameter budget. Runs in about ten seconds on two CPU cores;
``NASFORGE_QUICK=1`` trains 2 architectures per form for one epoch:

    python examples/search_your_data.py
"""

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import nasforge as nf

QUICK = os.environ.get("NASFORGE_QUICK") == "1"  # a few-second run, as in CI


def digits_as_numpy() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and validation arrays, as if read from your own files."""
    data = nf.load_dataset("digits")
    x_train, y_train = (t.numpy() for t in data.train.tensors)
    x_val, y_val = (t.numpy() for t in data.val.tensors)
    return x_train, y_train, x_val, y_val


def search(space: nf.Space, data: object, title: str) -> tuple[int, ...]:
    """Search ``space`` on ``data``; return the sample shape the evaluator read."""
    evaluator = nf.TrainEvaluator(space, data, epochs=1 if QUICK else 4, lr=3e-3, seed=0)
    result = nf.search(
        space,
        evaluator,
        strategy="random",
        budget=2 if QUICK else 4,
        seed=0,
        constraints=["params <= 20_000"],
        progress=False,
    )
    best = result.best
    print(
        f"{title:<34} input {evaluator.input_shape!s:<12} best val_acc "
        f"{best.metrics['val_acc']:.3f}  params {best.metrics['params']:>6.0f}  {best.key}"
    )
    assert all(t.metrics["params"] <= 20_000 for t in result.finished), title
    return evaluator.input_shape


def main() -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_val, y_val = digits_as_numpy()
    vectors = ((x_train.reshape(len(x_train), -1), y_train), (x_val.reshape(len(x_val), -1), y_val))

    shape = search(nf.build("space", "mlp", max_depth=2), vectors, "numpy vectors, mlp")
    assert shape == (64,), shape
    shape = search(
        nf.build("space", "cnn", max_stages=2), vectors, "numpy vectors as 1-D signals, cnn"
    )
    assert shape == (64,), shape  # the model adds the channel axis itself

    train = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    loader = DataLoader(train, batch_size=64, shuffle=True)
    val = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
    shape = search(
        nf.build("space", "cnn", max_stages=2), (loader, val), "images in a DataLoader, cnn"
    )
    assert shape == (1, 8, 8), shape


if __name__ == "__main__":
    main()
