"""Cheap, general measurements of a model: parameters, MACs, CPU latency, size on disk.

These are the numbers a compression report compares before and after, and that a search
evaluator records for every trial::

    from torchvision.models import resnet18
    from nasforge.measure import count_macs, count_params, measure_latency, size_on_disk

    model = resnet18(weights=None)
    count_params(model)                               # 11_689_512
    count_macs(model, (3, 224, 224))                  # ~1.81e9
    measure_latency(model, (3, 224, 224), batch_size=1, threads=1)   # milliseconds
    size_on_disk(model)                               # bytes of the saved state_dict

Everything works on float models and on int8 models converted by ``torch.ao`` (their packed
weights are counted too).
"""

from __future__ import annotations

import dataclasses
import io
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.validation import check_int, check_number

__all__ = [
    "LatencyOptions",
    "compare_latency",
    "count_macs",
    "count_params",
    "measure_latency",
    "size_on_disk",
]

InputLike = torch.Tensor | Sequence[int]


@dataclass(frozen=True)
class LatencyOptions:
    """How a latency measurement runs (see :func:`measure_latency`): the median of
    ``repeats`` timed passes of ``batch_size`` samples on the CPU with ``threads`` intra-op
    threads (None keeps the current setting), after ``warmup`` untimed passes.

    The one definition of these options: the training evaluator, the search config and the
    compression report all take one (or a mapping of its fields).
    """

    batch_size: int = 1
    threads: int | None = 1
    warmup: int = 3
    repeats: int = 20

    def __post_init__(self) -> None:
        check_int(self.batch_size, "latency.batch_size", low=1)
        check_int(self.threads, "latency.threads", low=1, optional=True)
        check_int(self.warmup, "latency.warmup", low=0)
        check_int(self.repeats, "latency.repeats", low=1)

    @classmethod
    def parse(cls, value: Any) -> LatencyOptions | None:
        """From True (the defaults), False/None (no latency), a LatencyOptions or a mapping
        of its fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            fields = [f.name for f in dataclasses.fields(cls)]
            unknown = sorted(set(value) - set(fields))
            if unknown:
                raise ConfigError.invalid(
                    f"latency.{unknown[0]}", value[unknown[0]], f"one of the options {fields}"
                )
            return cls(**value)
        raise ConfigError.invalid(
            "latency", value, "True, False, a LatencyOptions or a mapping of its fields"
        )

    def measure(self, model: nn.Module, inputs: InputLike) -> float:
        """:func:`measure_latency` of ``model`` with these options, in milliseconds."""
        return measure_latency(model, inputs, **dataclasses.asdict(self))


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model``.

    Quantized modules (``torch.ao.nn.quantized``) keep their weights in packed form rather
    than as ``nn.Parameter``; their ``weight()``/``bias()`` are counted as well, so an int8
    model has the same count as the float model it came from.
    """
    total = 0
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad or not trainable_only]
        total += sum(p.numel() for p in own)
        if not own and not trainable_only:
            total += _packed_numel(module)
    return total


def _packed_numel(module: nn.Module) -> int:
    numel = 0
    for attr in ("weight", "bias"):
        getter = getattr(type(module), attr, None)
        if getter is None or not callable(getter) or isinstance(getter, property):
            continue
        try:
            value = getattr(module, attr)()
        except Exception:  # not a packed-weight accessor after all
            continue
        if isinstance(value, torch.Tensor):
            numel += value.numel()
    return numel


def _example(inputs: InputLike, batch_size: int | None, device: torch.device) -> torch.Tensor:
    if isinstance(inputs, torch.Tensor):
        x = inputs
        if batch_size is not None and x.shape[0] != batch_size:
            reps = math.ceil(batch_size / x.shape[0])
            x = x.repeat(reps, *([1] * (x.dim() - 1)))[:batch_size]
        return x.to(device)
    shape = tuple(int(d) for d in inputs)
    if not shape or any(d < 1 for d in shape):
        raise ConfigError.invalid(
            "input_shape", inputs, "positive dimensions without the batch, e.g. (3, 32, 32)"
        )
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size or 1, *shape), generator=generator).to(device)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def count_macs(model: nn.Module, inputs: InputLike) -> int:
    """Multiply-accumulate operations of one forward pass on one sample.

    ``inputs`` is an input shape without the batch dimension, e.g. ``(3, 224, 224)``, or an
    example batch (the count is divided by its batch size). Counted: convolutions (any
    dimension, grouped, depthwise and transposed) and linear layers, including the int8
    versions of these from ``torch.ao``. Normalisation, activations, pooling and additions
    are not counted, as in the published counts (torchvision's resnet18: 1.814 G and
    mobilenet_v2: 0.300 G at 224x224).
    """
    x = _example(inputs, None, _device_of(model))
    batch = x.shape[0]
    total = 0

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        if not isinstance(output, torch.Tensor):
            return
        total += _module_macs(module, args, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if _is_counted(m)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return int(total // batch)


def _is_counted(module: nn.Module) -> bool:
    return _is_conv(module) or _is_linear(module)


def _is_conv(module: nn.Module) -> bool:
    # Duck-typed so that torch.ao's quantized and fused conv modules are counted too.
    return all(hasattr(module, a) for a in ("in_channels", "out_channels", "kernel_size", "groups"))


def _is_linear(module: nn.Module) -> bool:
    return hasattr(module, "in_features") and hasattr(module, "out_features")


def _module_macs(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> int:
    if _is_conv(module):
        kernel = math.prod(_as_tuple(module.kernel_size))
        transposed = bool(getattr(module, "transposed", False))
        if transposed:  # every input pixel is spread over a kernel of output pixels
            source = args[0] if args and isinstance(args[0], torch.Tensor) else output
            pixels = source.numel() // source.shape[1]
            return pixels * kernel * module.out_channels * module.in_channels // module.groups
        per_output = kernel * module.in_channels // module.groups
        return output.numel() * per_output
    return output.numel() * module.in_features


def _as_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (int(value),)


def measure_latency(
    model: nn.Module,
    inputs: InputLike,
    *,
    batch_size: int = 1,
    threads: int | None = 1,
    warmup: int = 5,
    repeats: int = 30,
    min_time: float = 0.0,
) -> float:
    """Median wall-clock time in milliseconds of one forward pass of ``batch_size`` samples.

    ``inputs`` is an input shape without the batch dimension or an example tensor (rows
    are repeated or cut to ``batch_size``). The model runs in eval mode under
    ``torch.inference_mode`` on its own device, after ``warmup`` untimed passes;
    ``repeats`` passes are timed one by one (continuing until ``min_time`` seconds have
    passed, if given). ``threads`` sets ``torch.set_num_threads`` for the measurement and
    restores it afterwards (None keeps the current setting).
    """
    _check_timing(batch_size, threads, warmup, repeats)
    check_number(min_time, "min_time", low=0)
    device = _device_of(model)
    x = _example(inputs, batch_size, device)
    previous = torch.get_num_threads()
    was_training = model.training
    model.eval()
    if threads is not None:
        torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            sync()
            started = time.perf_counter()
            while len(times) < repeats or time.perf_counter() - started < min_time:
                begin = time.perf_counter()
                model(x)
                sync()
                times.append(time.perf_counter() - begin)
    finally:
        if threads is not None:
            torch.set_num_threads(previous)
        model.train(was_training)
    return statistics.median(times) * 1000.0


def compare_latency(
    models: Mapping[str, nn.Module],
    inputs: InputLike,
    *,
    batch_size: int = 1,
    threads: int | None = 1,
    warmup: int = 5,
    repeats: int = 30,
    quantile: float = 0.5,
) -> dict[str, float]:
    """Median latency in milliseconds of each of ``models``, timed in turn, call by call.

    Every repeat runs each model once (in a rotating order), so a busy machine slows all
    of them alike and their ratios (speedups) stay steady where separate
    :func:`measure_latency` calls minutes apart would not. On a shared machine the times
    can be bimodal (another job takes the core for seconds at a time); ``quantile=0.1``
    reports a low quantile instead of the median, which such load cannot inflate::

        compare_latency({"dense": model, "pruned": small}, (3, 32, 32), batch_size=1)
    """
    check_number(quantile, "quantile", low=0, high=1, hint="0.5 is the median")
    _check_timing(batch_size, threads, warmup, repeats)
    if not models:
        return {}
    names = list(models)
    prepared = []
    for name in names:
        model = models[name]
        prepared.append((model, _example(inputs, batch_size, _device_of(model)), model.training))
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        with torch.inference_mode():
            for model, x, _ in prepared:
                model.eval()
                for _ in range(warmup):
                    model(x)
            for r in range(repeats):
                for i in range(len(names)):
                    k = (i + r) % len(names)
                    model, x, _ = prepared[k]
                    begin = time.perf_counter()
                    model(x)
                    if x.device.type == "cuda":
                        torch.cuda.synchronize()
                    times[names[k]].append(time.perf_counter() - begin)
    finally:
        if threads is not None:
            torch.set_num_threads(previous)
        for model, _, was_training in prepared:
            model.train(was_training)
    return {
        name: float(torch.tensor(values, dtype=torch.float64).quantile(quantile)) * 1000.0
        for name, values in times.items()
    }


def _check_timing(batch_size: Any, threads: Any, warmup: Any, repeats: Any) -> None:
    check_int(batch_size, "batch_size", low=1)
    check_int(threads, "threads", low=1, optional=True)
    check_int(warmup, "warmup", low=0)
    check_int(repeats, "repeats", low=1)


def size_on_disk(model: nn.Module | dict[str, Any]) -> int:
    """Bytes that ``torch.save(model.state_dict())`` writes (or of a given state_dict).

    Measured in memory; a file differs by a few bytes per tensor, as the archive's internal
    names follow the file name.
    """
    state = model.state_dict() if isinstance(model, nn.Module) else model
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()
