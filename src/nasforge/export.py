"""Saving, reloading and exporting models, pruned or not.

A pruned model has the class of the original but smaller tensors, so its state_dict does
not load into a freshly built model. :func:`save_model` stores the state_dict together
with the shape attributes of every conv, linear and norm layer (and, optionally, how to
build the original); :func:`load_model` builds the original, shrinks its layers to the
saved shapes, and loads the weights. The file holds only tensors, numbers and strings, so
it loads with ``torch.load(..., weights_only=True)``::

    from nasforge.export import export_onnx, export_torchscript, load_model, save_model

    save_model(pruned, "pruned.pt", builder="resnet18", kwargs={"num_classes": 10})
    model = load_model("pruned.pt")                     # or load_model(path, model=fresh)
    export_torchscript(pruned, "pruned.ts", example)    # checked against the model
    export_onnx(pruned, "pruned.onnx", example)         # needs onnx (and onnxruntime to check)

int8 models converted by ``torch.ao`` carry packed weights that only the quantization
pass can rebuild: export them with :func:`export_torchscript` (``torch.jit.load`` reads
them back).
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge._io import atomic_torch_save
from nasforge.errors import (
    CheckpointError,
    ConfigError,
    MissingDependencyError,
    UnsupportedModelError,
    close_matches,
)

__all__ = [
    "export_onnx",
    "export_torchscript",
    "load_model",
    "resolve_builder",
    "save_model",
    "shrink_to",
]

logger = logging.getLogger(__name__)

FORMAT = "nasforge.model/1"
# Shape attributes that pruning changes, per layer family.
_SHAPE_ATTRS = (
    "in_channels",
    "out_channels",
    "groups",
    "in_features",
    "out_features",
    "num_features",
)


def resolve_builder(spec: str, *, field: str = "model") -> Callable[..., Any]:
    """A model constructor from a torchvision model name (``"resnet18"``) or ``module:function``.

    ``field`` names the config field in error messages.
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError.invalid(
            field, spec, "a torchvision model name or 'package.module:function'"
        )
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr.isidentifier():
            raise ConfigError.invalid(field, spec, "'package.module:function'")
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError) as exc:
            raise ConfigError.invalid(
                field, spec, "an importable 'package.module:function'", f"{exc}"
            ) from None
        builder = getattr(module, attr, None)
        if not callable(builder):
            raise ConfigError.invalid(field, spec, f"a callable {attr!r} in module {module_name!r}")
        return builder
    import torchvision

    names = torchvision.models.list_models()
    if spec not in names:
        raise ConfigError.invalid(
            field,
            spec,
            "a torchvision model name or 'package.module:function'",
            ("unknown torchvision model." + close_matches(spec, names)).strip(),
        )
    return lambda **kwargs: torchvision.models.get_model(spec, **{"weights": None, **kwargs})


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds ``torch.ao`` int8 modules (which only TorchScript saves)."""
    return any(
        type(m).__module__.startswith("torch.ao.nn.quantized") or hasattr(m, "_packed_params")
        for m in model.modules()
    )


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    builder: str | None = None,
    kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (pruned or not) so that :func:`load_model` can rebuild it.

    ``builder`` (a torchvision model name or ``module:function``) and ``kwargs`` say how
    to build the original model; without them, pass ``model=`` to :func:`load_model`.
    ``metadata`` is any dict of plain values to keep alongside. The file is written
    atomically.
    """
    if is_quantized(model):
        raise ConfigError(
            "save_model cannot rebuild torch.ao int8 modules from a state_dict. HINT: "
            "export the int8 model with export_torchscript(model, path, example_inputs) and "
            "load it with torch.jit.load",
            field="model",
        )
    from torch.nn.utils import parametrize

    masked = [n for n, m in model.named_modules() if n and parametrize.is_parametrized(m)]
    if masked:
        raise ConfigError(
            f"{masked[0]!r} still carries a parametrization (a pruning mask or fake-quant). "
            "HINT: call nasforge.compress.make_permanent(model) (masks) or "
            "strip_fake_quant(model) (QAT) before saving",
            field="model",
        )
    if builder is not None:
        resolve_builder(builder)  # fail now rather than at load time
    shapes: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        attrs: dict[str, Any] = {
            a: int(getattr(m, a)) for a in _SHAPE_ATTRS if isinstance(getattr(m, a, None), int)
        }
        if isinstance(m, nn.LayerNorm):
            attrs["normalized_shape"] = list(m.normalized_shape)
        shapes[name] = attrs
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "shapes": {name: attrs for name, attrs in shapes.items() if attrs},
        "builder": builder,
        "kwargs": dict(kwargs or {}),
        "metadata": dict(metadata or {}),
    }
    return atomic_torch_save(payload, path)


def shrink_to(
    model: nn.Module, state_dict: dict[str, torch.Tensor], shapes: dict[str, Any]
) -> nn.Module:
    """Resize ``model``'s tensors and shape attributes to match a pruned ``state_dict``.

    Tensors are replaced by uninitialised ones of the saved shapes (load the state_dict
    next); ``shapes`` maps module names to attributes such as ``out_channels``.
    """
    for key, value in state_dict.items():
        module_name, _, attr = key.rpartition(".")
        try:
            module = model.get_submodule(module_name)
        except AttributeError:
            raise CheckpointError(
                f"the saved weights have {key!r}, but the rebuilt model has no module "
                f"{module_name!r}. HINT: build the same architecture that was saved"
            ) from None
        current = getattr(module, attr, None)
        if not isinstance(current, torch.Tensor) or current.shape == value.shape:
            continue
        fresh = torch.empty(value.shape, dtype=current.dtype, device=current.device)
        if isinstance(current, nn.Parameter):
            setattr(module, attr, nn.Parameter(fresh, requires_grad=current.requires_grad))
        else:
            module._buffers[attr] = fresh
    for name, attrs in shapes.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise CheckpointError(f"the rebuilt model has no module {name!r}") from None
        for attr, value in attrs.items():
            setattr(module, attr, tuple(value) if isinstance(value, list) else value)
    return model


def load_model(
    path: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a model saved by :func:`save_model` (read with ``weights_only=True``).

    ``model`` is a freshly built original (unpruned) model to shrink and fill; without it
    the saved ``builder`` and ``kwargs`` build one.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{str(path)!r} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a nasforge model file (format {FORMAT!r})")
    if model is None:
        if not payload["builder"]:
            raise ConfigError(
                f"{str(path)!r} does not say how to build the model. HINT: pass "
                "load_model(path, model=<the original, unpruned model>)",
                field="model",
            )
        model = resolve_builder(payload["builder"])(**payload["kwargs"])
    shrink_to(model, payload["state_dict"], payload["shapes"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def _example_tuple(example_inputs: torch.Tensor | tuple[Any, ...]) -> tuple[Any, ...]:
    return example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)


def _check_close(
    expected: torch.Tensor, actual: torch.Tensor, what: str, rtol: float, atol: float
) -> None:
    actual = torch.as_tensor(actual)
    if expected.shape != actual.shape or not torch.allclose(
        expected.float(), actual.float(), rtol=rtol, atol=atol
    ):
        diff = (
            (expected.float() - actual.float()).abs().max().item()
            if (expected.shape == actual.shape)
            else float("nan")
        )
        raise UnsupportedModelError(
            f"{what} outputs differ from the PyTorch model's (max abs difference {diff:.3g}, "
            f"rtol={rtol}, atol={atol})"
        )


def export_torchscript(
    model: nn.Module,
    path: str | os.PathLike[str],
    example_inputs: torch.Tensor | tuple[Any, ...],
    *,
    check: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> Path:
    """Trace ``model`` (eval mode) to TorchScript at ``path``; works for int8 models too.

    With ``check``, the saved file is loaded back and its outputs on ``example_inputs``
    compared with the model's. (torch marks TorchScript as deprecated in favour of
    ``torch.export``; it still works and is what C++ and mobile runtimes load, so those
    warnings are silenced here.)
    """
    inputs = _example_tuple(example_inputs)
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
        traced = torch.jit.trace(model, inputs, check_trace=False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(traced, str(path))
        if check:
            expected = model(*inputs)
            actual = torch.jit.load(str(path))(*inputs)
            _check_close(expected, actual, "TorchScript", rtol, atol)
    return path


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    example_inputs: torch.Tensor | tuple[Any, ...],
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    check: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> Path:
    """Export ``model`` (eval mode) to ONNX at ``path``; needs the ``onnx`` package.

    ``dynamic_batch`` makes the batch dimension symbolic. With ``check``, the file is
    validated with ``onnx.checker`` and, when ``onnxruntime`` is installed, run on
    ``example_inputs`` and compared with the PyTorch outputs.
    """
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", purpose="to export ONNX models") from None
    inputs = _example_tuple(example_inputs)
    names = [f"input{i}" if len(inputs) > 1 else "input" for i in range(len(inputs))]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    axes = {n: {0: "batch"} for n in [*names, "output"]} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter needs only `onnx`; torch 2.9+ calls it legacy
        # (the torch.export-based one needs onnxscript too) but it is what works for
        # every model that traces.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        torch.onnx.export(
            model,
            inputs,
            str(path),
            input_names=names,
            output_names=["output"],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=False,
        )
        if check:
            onnx.checker.check_model(onnx.load(str(path)))
            try:
                import onnxruntime
            except ImportError:
                logger.warning("onnxruntime is not installed: ONNX outputs were not compared")
                return path
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feeds = {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True)}
            actual = torch.from_numpy(session.run(None, feeds)[0])
            _check_close(model(*inputs).cpu(), actual, "ONNX", rtol, atol)
    return path
