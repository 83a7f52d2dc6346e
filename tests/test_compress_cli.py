"""`nasforge compress CONFIG.yaml`: the YAML pipeline from the command line."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import yaml

from nasforge.cli import main
from nasforge.compress.config import load_config
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
        from nasforge.compress.config import run_compress

        run_compress(load_config(path))
