"""Register your own dataset and callback, and use them like the built-ins.

It checks that the dataset is listed and loads by name, that the callback runs, and that
the network learns the XOR, which no linear model can. A few seconds (so
``NASFORGE_QUICK=1``, the quick mode of the other examples, changes nothing here):

    python examples/custom_plugin.py
"""

import torch
from torch import nn
from torch.utils.data import TensorDataset

import nasforge as nf


@nf.register("dataset", "xor_blobs")
def xor_blobs(*, num_samples: int = 800, seed: int = 0) -> nf.DataBundle:
    """Two-class XOR of Gaussian blobs in 2-D: not linearly separable."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, 2, generator=generator)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    cut = int(0.8 * num_samples)
    return nf.DataBundle(
        name="xor_blobs",
        train=TensorDataset(x[:cut], y[:cut]),
        val=TensorDataset(x[cut:], y[cut:]),
        test=None,
        num_classes=2,
        input_shape=(2,),
    )


class PrintEveryFiveEpochs(nf.Callback):
    """A callback that reads the epoch metrics."""

    def __init__(self):
        self.printed = []

    def on_epoch_end(self, trainer, state):
        if (state.epoch + 1) % 5 == 0:
            print(f"epoch {state.epoch + 1}: val accuracy {state.metrics['val_accuracy']:.3f}")
            self.printed.append(state.epoch + 1)


def main() -> None:
    print("datasets:", nf.available("dataset"))
    data = nf.load_dataset("xor_blobs", seed=1)
    nf.seed_everything(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    trainer = nf.Trainer(data, epochs=20, lr=1e-2, progress=False, seed=0)
    callback = PrintEveryFiveEpochs()
    trainer.fit(model, callbacks=[callback])

    assert "xor_blobs" in nf.available("dataset"), "the plugin is not registered"
    assert callback.printed == [5, 10, 15, 20], callback.printed
    # XOR is not linearly separable: a linear model stays near 0.5-0.75 accuracy.
    accuracy = trainer.evaluate(model)["accuracy"]
    assert accuracy > 0.9, f"the MLP did not learn the XOR: val accuracy {accuracy:.3f}"


if __name__ == "__main__":
    main()
