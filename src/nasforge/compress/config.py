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
    trainer: {epochs: 2, lr: 0.001, seed: 0}      # any nasforge.Trainer argument
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

from nasforge import registry
from nasforge.config import check_fields, is_int, kwargs, named, read_yaml
from nasforge.errors import CheckpointError, ConfigError, close_matches

__all__ = ["CompressConfig", "load_config", "run_compress"]

logger = logging.getLogger(__name__)

MODEL_REF = "$model"
_SECTIONS = ("model", "data", "trainer", "compressors", "measure", "output")
_MODEL_KEYS = ("name", "kwargs", "state_dict", "train_epochs")
_DATA_KEYS = ("name", "options")
_MEASURE_KEYS = ("batch_sizes", "threads", "repeats", "warmup", "latency")
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
    trainer: dict[str, Any] = field(default_factory=dict)
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
    data_name, data = named(raw["data"], "data")
    check_fields(data, "data", _DATA_KEYS)
    train_epochs = model.get("train_epochs", 0)
    if not is_int(train_epochs) or train_epochs < 0:
        raise ConfigError.invalid("model.train_epochs", train_epochs, "an integer >= 0")
    state_dict = model.get("state_dict")
    if state_dict is not None and not isinstance(state_dict, str):
        raise ConfigError.invalid("model.state_dict", state_dict, "a file path")
    if ":" not in data_name:
        known = registry.available("dataset")
        if data_name not in known:
            raise ConfigError.invalid(
                "data.name",
                data_name,
                f"a registered dataset ({', '.join(known)}) or 'package.module:function'",
                close_matches(data_name, known).strip() or None,
            )
    steps = raw["compressors"]
    if not isinstance(steps, list) or not steps:
        raise ConfigError.invalid("compressors", steps, "a non-empty list of compressors")
    compressors = []
    known = registry.available("compressor")
    for i, step in enumerate(steps):
        name, options = named(step, f"compressors[{i}]")
        if name not in known:
            raise ConfigError.invalid(
                f"compressors[{i}].name",
                name,
                f"one of {', '.join(known)}",
                close_matches(name, known).strip() or None,
            )
        compressors.append((name, {k: v for k, v in options.items() if k != "name"}))
    output = check_fields(raw.get("output"), "output", _OUTPUT_KEYS)
    for key, value in output.items():
        if not isinstance(value, str):
            raise ConfigError.invalid(f"output.{key}", value, "a file path")
    return CompressConfig(
        model=model_name,
        data=data_name,
        model_kwargs=kwargs(model.get("kwargs"), "model.kwargs"),
        state_dict=(base / state_dict) if state_dict else None,
        train_epochs=train_epochs,
        data_options=kwargs(data.get("options"), "data.options"),
        trainer=kwargs(raw.get("trainer"), "trainer"),
        compressors=compressors,
        measure=dict(check_fields(raw.get("measure"), "measure", _MEASURE_KEYS)),
        output={k: base / v for k, v in output.items()},
    )


def _load_weights(model: Any, path: Path) -> Any:
    import torch

    from nasforge.compress.export import FORMAT, load_model

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


def _load_data(config: CompressConfig) -> Any:
    from nasforge.compress.export import resolve_builder
    from nasforge.data.bundle import load_dataset

    if ":" not in config.data:
        return load_dataset(config.data, **config.data_options)
    return resolve_builder(config.data, field="data.name")(**config.data_options)


def run_compress(
    config: CompressConfig, *, report_path: str | os.PathLike[str] | None = None
) -> Any:
    """Build the model and data, run the pipeline, write the outputs; returns the report."""
    from nasforge.compress.export import (
        export_onnx,
        export_torchscript,
        resolve_builder,
        save_model,
    )
    from nasforge.compress.pipeline import Pipeline, sample_inputs
    from nasforge.data.bundle import DataBundle
    from nasforge.train.trainer import Trainer

    model = resolve_builder(config.model, field="model.name")(**config.model_kwargs)
    if config.state_dict is not None:
        model = _load_weights(model, config.state_dict)
    data = _load_data(config)
    if isinstance(data, DataBundle):
        trainer_data: tuple[Any, ...] = (data,)
    elif isinstance(data, tuple | list) and len(data) in (2, 3):
        trainer_data = tuple(data[:2])
    else:
        raise ConfigError.invalid(
            "data.name", config.data, "a function returning a DataBundle or (train, val[, test])"
        )
    options = dict(config.trainer)
    if isinstance(data, tuple | list) and len(data) == 3:
        options.setdefault("test_data", data[2])
    try:
        trainer = Trainer(*trainer_data, **options)
    except TypeError as exc:
        raise ConfigError(f"trainer: {exc}", field="trainer") from None
    if config.train_epochs:
        logger.info("training the model for %d epochs before compression", config.train_epochs)
        trainer.fit(model, epochs=config.train_epochs)
    compressors = []
    for i, (name, opts) in enumerate(config.compressors):
        resolved = {k: (copy.deepcopy(model) if v == MODEL_REF else v) for k, v in opts.items()}
        try:
            compressors.append(registry.build("compressor", name, **resolved))
        except ConfigError as exc:
            raise ConfigError(
                f"compressors[{i}] ({name}): {exc}", field=f"compressors[{i}]"
            ) from None
    measure = dict(config.measure)
    pipeline = Pipeline(compressors, **measure)
    compressed, report = pipeline.run(model, trainer)
    example = sample_inputs(trainer, 2)
    outputs = dict(config.output)
    if report_path is not None:
        outputs["report"] = Path(report_path)
    if "model" in outputs:
        builder_kwargs = config.model_kwargs
        save_model(compressed, outputs["model"], builder=config.model, kwargs=builder_kwargs)
    if "torchscript" in outputs:
        export_torchscript(compressed, outputs["torchscript"], example)
    if "onnx" in outputs:
        export_onnx(compressed, outputs["onnx"], example)
    report.settings["outputs"] = {k: str(v) for k, v in outputs.items()}
    if "report" in outputs:
        Path(outputs["report"]).parent.mkdir(parents=True, exist_ok=True)
        report.to_json(outputs["report"])
    return report
