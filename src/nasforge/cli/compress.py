"""``nasforge compress CONFIG.yaml``: a compression pipeline described in YAML.

.. code-block:: yaml

    model:
      name: resnet18              # a torchvision model name, or "package.module:function"
      kwargs: {num_classes: 10}
      state_dict: trained.pt      # optional: a state_dict, nasforge checkpoint or model file
      train_epochs: 0             # optional: train this long first (no state_dict at hand)
    data:
      name: digits                # a registered dataset, or "package.module:function"
      options: {size: 16, channels: 3}
    trainer: {epochs: 2, lr: 0.001, seed: 0}      # any nasforge.TrainConfig option
    compressors:                  # run in order; options are the compressor's arguments
      - {name: channel_prune, ratio: 0.5, finetune_epochs: 2}
      - {name: distill, teacher: $model}          # $model is the uncompressed input model
      - {name: int8}
    measure: {batch_sizes: [1, 32], threads: 1, repeats: 20}
    output:                       # all optional; relative paths are next to the config
      model: compressed.pt        # save_model (not for int8 models)
      torchscript: compressed.ts
      onnx: compressed.onnx       # needs the onnx package
      report: report.json

Every field is validated before anything trains; errors name the field, e.g.
``compressors[1].name``.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge import registry
from nasforge.compress.pipeline import Pipeline
from nasforge.compress.report import CompressionReport
from nasforge.config import call_user, check_fields, check_registered, kwargs, named, read_yaml
from nasforge.data.bundle import (
    TORCHVISION_PREFIX,
    DataBundle,
    check_dataset_name,
    dataset_call,
)
from nasforge.errors import CheckpointError, ConfigError, NasforgeError
from nasforge.export import (
    FORMAT,
    export_onnx,
    export_torchscript,
    load_model,
    resolve_builder,
    save_model,
)
from nasforge.train.config import TrainConfig
from nasforge.trainer import Trainer
from nasforge.validation import check_int, check_str

__all__ = ["CompressConfig", "load_config", "run_compress"]

logger = logging.getLogger(__name__)

MODEL_REF = "$model"
_SECTIONS = ("model", "data", "trainer", "compressors", "measure", "output")
_MODEL_KEYS = ("name", "kwargs", "state_dict", "train_epochs")
_DATA_KEYS = ("name", "options")
_MEASURE_KEYS = ("batch_sizes", "threads", "repeats", "warmup", "latency", "slowdown_tolerance")
_OUTPUT_KEYS = ("model", "torchscript", "onnx", "report")


@dataclass(frozen=True)
class CompressConfig:
    """A validated compression config (see the module docstring for the YAML)."""

    model: str
    data: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    state_dict: Path | None = None
    train_epochs: int = 0
    data_options: dict[str, Any] = field(default_factory=dict)
    trainer: TrainConfig = field(default_factory=TrainConfig)
    compressors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    measure: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Path] = field(default_factory=dict)


def load_config(source: str | os.PathLike[str] | dict[str, Any]) -> CompressConfig:
    """Read and validate a compression config from a YAML file (or an already parsed dict)."""
    raw, base = read_yaml(source)
    raw = check_fields(raw, "config", _SECTIONS)
    for required in ("model", "data", "compressors"):
        if required not in raw:
            raise ConfigError(
                f"the config has no {required!r} section. HINT: see `nasforge compress --help`",
                field=required,
            )
    model_name, model = named(raw["model"], "model")
    check_fields(model, "model", _MODEL_KEYS)
    resolve_builder(model_name, field="model.name")
    data_name, data = named(raw["data"], "data")
    check_fields(data, "data", _DATA_KEYS)
    check_dataset_name(data_name, "data.name")
    state_dict = check_str(model.get("state_dict"), "model.state_dict", optional=True)
    measure = dict(check_fields(raw.get("measure"), "measure", _MEASURE_KEYS))
    try:
        Pipeline([], **measure)  # checks the measurement options now
    except ConfigError as exc:
        raise exc.within("measure") from None
    return CompressConfig(
        model=model_name,
        data=data_name,
        model_kwargs=kwargs(model.get("kwargs"), "model.kwargs"),
        state_dict=(base / state_dict) if state_dict else None,
        train_epochs=check_int(model.get("train_epochs", 0), "model.train_epochs", low=0),
        data_options=kwargs(data.get("options"), "data.options"),
        trainer=TrainConfig.from_dict(kwargs(raw.get("trainer"), "trainer"), field="trainer"),
        compressors=_compressor_specs(raw["compressors"]),
        measure=measure,
        output=_outputs(raw.get("output"), base),
    )


def run_compress(
    config: CompressConfig, *, report_path: str | os.PathLike[str] | None = None
) -> CompressionReport:
    """Build the model and data, run the pipeline, write the outputs; returns the report."""
    model = _build_model(config)
    trainer = _build_trainer(config)
    compressors = _build_compressors(config, model)  # bad options fail before any training
    if config.train_epochs:
        logger.info("training the model for %d epochs before compression", config.train_epochs)
        trainer.fit(model, epochs=config.train_epochs)
        compressors = _build_compressors(config, model)  # $model is the trained model
    compressed, report = Pipeline(compressors, **config.measure).run(model, trainer)
    outputs = dict(config.output)
    if report_path is not None:
        outputs["report"] = Path(report_path)
    _write_outputs(config, compressed, report, outputs, trainer.sample_inputs(2))
    return report


def _compressor_specs(steps: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(steps, list) or not steps:
        raise ConfigError.invalid("compressors", steps, "a non-empty list of compressors")
    specs = []
    for i, step in enumerate(steps):
        name, options = named(step, f"compressors[{i}]")
        check_registered("compressor", name, f"compressors[{i}].name")
        specs.append((name, {k: v for k, v in options.items() if k != "name"}))
    return specs


def _outputs(section: Any, base: Path) -> dict[str, Path]:
    output = check_fields(section, "output", _OUTPUT_KEYS)
    return {k: base / check_str(v, f"output.{k}") for k, v in output.items()}


def _build_model(config: CompressConfig) -> nn.Module:
    builder = resolve_builder(config.model, field="model.name")
    model = call_user(builder, config.model_kwargs, "model.kwargs", name=config.model)
    if not isinstance(model, nn.Module):
        raise ConfigError.invalid("model.name", config.model, "a constructor of an nn.Module")
    if config.state_dict is not None:
        model = _load_weights(model, config.state_dict)
    return model


def _load_weights(model: nn.Module, path: Path) -> nn.Module:
    if not path.is_file():
        raise CheckpointError(f"model.state_dict {str(path)!r} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return load_model(path, model=model)
    if isinstance(payload, dict) and payload.get("format") == "nasforge.checkpoint/1":
        payload = payload["model"]
    try:
        model.load_state_dict(payload)
    except (RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"model.state_dict {str(path)!r} does not fit the model: {exc}"
        ) from None
    return model


def _build_trainer(config: CompressConfig) -> Trainer:
    """The Trainer over the config's data: a DataBundle or ``(train, val[, test])``."""
    if ":" in config.data and not config.data.startswith(TORCHVISION_PREFIX):
        builder = resolve_builder(config.data, field="data.name")
        data = call_user(builder, config.data_options, "data.options", name=config.data)
    else:
        registered, options = dataset_call(config.data, config.data_options)
        data = call_user(registry.get("dataset", registered), options, "data.options")
    if isinstance(data, DataBundle):
        return Trainer(data, config=config.trainer)
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        test = data[2] if len(data) == 3 else None
        return Trainer(data[0], data[1], test_data=test, config=config.trainer)
    raise ConfigError.invalid(
        "data.name", config.data, "a function returning a DataBundle or (train, val[, test])"
    )


def _build_compressors(config: CompressConfig, model: nn.Module) -> list[Any]:
    """The compressors, with ``$model`` replaced by a copy of the uncompressed model."""
    compressors = []
    for i, (name, options) in enumerate(config.compressors):
        resolved = {k: copy.deepcopy(model) if v == MODEL_REF else v for k, v in options.items()}
        try:
            compressors.append(registry.build("compressor", name, **resolved))
        except NasforgeError as exc:
            raise ConfigError(
                f"compressors[{i}] ({name}): {exc}", field=f"compressors[{i}]"
            ) from None
        except Exception as exc:
            raise ConfigError(
                f"compressors[{i}] ({name}): {type(exc).__name__}: {exc}",
                field=f"compressors[{i}]",
            ) from None
    return compressors


def _write_outputs(
    config: CompressConfig,
    compressed: nn.Module,
    report: CompressionReport,
    outputs: dict[str, Path],
    example: torch.Tensor,
) -> None:
    if "model" in outputs:
        save_model(compressed, outputs["model"], builder=config.model, kwargs=config.model_kwargs)
    if "torchscript" in outputs:
        export_torchscript(compressed, outputs["torchscript"], example)
    if "onnx" in outputs:
        export_onnx(compressed, outputs["onnx"], example)
    report.settings["outputs"] = {k: str(v) for k, v in outputs.items()}
    if "report" in outputs:
        Path(outputs["report"]).parent.mkdir(parents=True, exist_ok=True)
        report.to_json(outputs["report"])
