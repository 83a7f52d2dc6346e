"""`nasforge compress CONFIG.yaml`: the YAML pipeline from the command line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from nasforge.cli import main
from nasforge.cli.compress import load_config
from nasforge.errors import ConfigError

MODULE = """
import torch
from torch import nn

def small_cnn(width=16, num_classes=10):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _write(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


def test_compress_from_yaml_writes_report_and_model(user_module, capsys):
    from my_models import small_cnn

    torch.save(small_cnn(width=16).state_dict(), user_module / "trained.pt")
    config = _write(
        user_module / "c.yaml",
        {
            "model": {
                "name": "my_models:small_cnn",
                "kwargs": {"width": 16},
                "state_dict": "trained.pt",
                "train_epochs": 1,
            },
            "data": {"name": "digits", "options": {"seed": 0}},
            "trainer": {"epochs": 1, "progress": False, "lr": 0.003},
            "compressors": [
                {"name": "channel_prune", "ratio": 0.5, "finetune_epochs": 1},
                {"name": "distill", "teacher": "$model", "epochs": 1},  # the input model
                {"name": "magnitude_prune", "sparsity": 0.5},
            ],
            "measure": {"batch_sizes": [1, 4], "repeats": 2},
            "output": {"model": "out/small.pt", "torchscript": "out/small.ts"},
        },
    )
    assert main(["compress", str(config), "--report", str(user_module / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "channel_prune -> distill -> magnitude_prune" in printed
    assert "latency batch 4" in printed
    report = json.loads((user_module / "r.json").read_text())
    assert report["after"]["params"] < report["before"]["params"] / 2.5
    assert report["steps"][2]["stats"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    from nasforge.compress import load_model

    small = load_model(user_module / "out" / "small.pt")  # rebuilt from my_models:small_cnn
    assert small[0].out_channels == 8
    assert (user_module / "out" / "small.ts").is_file()


def test_config_errors_name_the_field(tmp_path, capsys):
    base = {
        "model": {"name": "resnet18"},
        "data": {"name": "digits"},
        "compressors": [{"name": "channel_prune"}],
    }
    bad = [
        (
            {**base, "compressors": [{"name": "chanel_prune"}]},
            r"compressors\[0\]\.name.*channel_prune",
        ),
        ({**base, "data": {"name": "digit"}}, r"data\.name.*digits"),
        ({**base, "model": {"name": "resnet18", "kwarg": {}}}, r"model\.kwarg.*kwargs"),
        ({**base, "trainer": ["epochs"]}, r"trainer"),
        ({**base, "output": {"onnx": 3}}, r"output\.onnx"),
        ({k: v for k, v in base.items() if k != "model"}, r"'model'"),
    ]
    for config, pattern in bad:
        with pytest.raises(ConfigError, match=pattern):
            load_config(config)
    path = _write(tmp_path / "bad.yaml", bad[0][0])
    assert main(["compress", str(path)]) == 1
    assert "compressors[0].name" in capsys.readouterr().err


def test_unknown_model_name_fails_before_training(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            """
            model: {name: resnet81}
            data: {name: digits}
            compressors: [{name: int8}]
            """
        )
    )
    with pytest.raises(ConfigError, match=r"model\.name.*resnet18"):
        from nasforge.cli.compress import run_compress

        run_compress(load_config(path))


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "configs"
EXAMPLE = EXAMPLE / "compress_resnet18_digits.yaml"


def test_example_config_is_valid_in_every_field():
    """Everything the example names exists and accepts its options: the model builder,
    the dataset, the Trainer, each compressor and the measurement settings."""
    import nasforge as nf
    from nasforge.export import resolve_builder

    config = load_config(EXAMPLE)
    assert (config.model, config.data) == ("resnet18", "digits")
    assert config.train_epochs == 3 and config.state_dict is None
    assert [name for name, _ in config.compressors] == ["channel_prune", "int8"]
    assert config.output["torchscript"] == EXAMPLE.parent / "resnet18_digits_int8.ts"
    model = resolve_builder(config.model, field="model.name")(**config.model_kwargs)
    assert model.fc.out_features == 10
    assert config.data in nf.available("dataset")
    data = nf.load_dataset(config.data, **config.data_options)
    assert data.input_shape == (3, 32, 32)
    assert isinstance(config.trainer, nf.TrainConfig)  # every trainer option is checked
    assert config.trainer.lr_schedule == "cosine" and config.trainer.progress is False
    steps = [nf.build("compressor", name, **options) for name, options in config.compressors]
    assert steps[0].ratio == 0.5 and steps[0].round_to == 8
    nf.Pipeline(steps, **config.measure)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_example_config_runs_with_tiny_settings(tmp_path):
    """The example end to end, shrunk: 8x8 digits, no training, one calibration batch."""
    from nasforge.cli.compress import run_compress

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["data"]["options"]["size"] = 8
    raw["model"]["train_epochs"] = 0
    raw["compressors"][0]["finetune_epochs"] = 0
    raw["compressors"][1]["calibration_batches"] = 1
    raw["measure"] = {**raw["measure"], "batch_sizes": [1], "repeats": 1, "warmup": 0}
    raw["output"] = {key: str(tmp_path / Path(value).name) for key, value in raw["output"].items()}
    report = run_compress(load_config(raw))
    assert [s["name"] for s in report.steps] == ["channel_prune", "int8"]
    assert report.after["params"] < report.before["params"] / 3.5  # half the channels
    assert report.after["size_bytes"] < report.before["size_bytes"] / 10  # ...then int8
    saved = json.loads((tmp_path / "resnet18_digits_report.json").read_text())
    assert saved["ratios"]["params_reduction"] == pytest.approx(report.ratios()["params_reduction"])
    scripted = torch.jit.load(str(tmp_path / "resnet18_digits_int8.ts"))
    assert scripted(torch.rand(2, 3, 8, 8)).shape == (2, 10)


def test_bad_compressor_options_fail_before_any_training(user_module, monkeypatch):
    import nasforge as nf
    from nasforge.cli.compress import run_compress

    def no_training(*args, **kwargs):
        raise AssertionError("the model was trained before the config was checked")

    monkeypatch.setattr(nf.Trainer, "fit", no_training)
    config = {
        "model": {"name": "my_models:small_cnn", "train_epochs": 1},
        "data": {"name": "digits"},
        "trainer": {"progress": False},
        "compressors": [{"name": "channel_prune", "ratio": 1.5}],
    }
    with pytest.raises(ConfigError, match=r"compressors\[0\].*ratio"):
        run_compress(load_config(config))
