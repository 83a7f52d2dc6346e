"""The compressor conformance suite: ``apply`` gives a working model with outputs of the
same shape, ``options`` records the constructor arguments, pickling, and the same result
in another process."""

from __future__ import annotations

import copy
import functools
import inspect
import pickle
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from nasforge.compress.base import Compressor
from nasforge.data.bundle import DataBundle, load_dataset
from nasforge.registry import build, get, name_of
from nasforge.testing._spawn import one_torch_thread, run_in_subprocess
from nasforge.trainer import Trainer

__all__ = ["CompressorConformance", "apply_pickled", "build_compressor", "tiny_cnn"]

Factory = Callable[[nn.Module], Compressor]


def tiny_cnn(num_classes: int = 3) -> nn.Sequential:
    """Conv-BN-ReLU-Conv-BN-ReLU-pool-Linear for ``(1, 8, 8)`` inputs (seeded weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, num_classes),
        )


@functools.cache
def _data() -> DataBundle:
    return load_dataset("synthetic", num_samples=120, input_shape=(1, 8, 8), num_classes=3, seed=0)


def _trainer() -> Trainer:
    return Trainer(_data(), epochs=1, seed=0, progress=False)


@functools.cache
def _trained_state() -> dict[str, torch.Tensor]:
    """:func:`tiny_cnn` trained for one epoch on the suite's data (once per process)."""
    model = tiny_cnn()
    with one_torch_thread():
        _trainer().fit(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


class CompressorConformance:
    """Pytest base class: every ``test_*`` checks one part of the compressor contract.

    Name a registered compressor and its options (a ``teacher`` argument is given the
    teacher model), or override the ``factory`` fixture, ``(teacher) -> Compressor``.
    The model to compress is a tiny CNN trained for an epoch on 1x8x8 synthetic data
    (override the ``model``, ``teacher`` and ``trainer`` fixtures for another)::

        from nasforge.testing import CompressorConformance

        class TestMyPruner(CompressorConformance):
            compressor = "my_prune"
            options = {"ratio": 0.25}
    """

    #: Registered compressor name (used by the default ``factory`` fixture).
    compressor: ClassVar[str | None] = None
    #: Constructor options for the default factory.
    options: ClassVar[dict[str, Any]] = {}
    #: Absolute tolerance when outputs computed in two processes are compared.
    atol: ClassVar[float] = 1e-6

    @pytest.fixture
    def factory(self) -> Factory:
        """``factory(teacher) -> Compressor``; override to build your compressor yourself."""
        if self.compressor is None:
            pytest.fail("set `compressor = 'name'` or override the `factory` fixture")
        name, options = self.compressor, dict(self.options)
        return lambda teacher: build_compressor(name, teacher, **options)

    @pytest.fixture
    def trainer(self) -> Trainer:
        """The Trainer that ``apply`` fine-tunes and calibrates with (one epoch, seed 0)."""
        return _trainer()

    @pytest.fixture
    def model(self) -> nn.Module:
        """The trained model to compress (a fresh copy for every test)."""
        model = tiny_cnn()
        model.load_state_dict(_trained_state())
        return model

    @pytest.fixture
    def teacher(self, model: nn.Module) -> nn.Module:
        """The teacher a distiller learns from: a copy of the trained model."""
        return copy.deepcopy(model)

    @pytest.fixture
    def inputs(self, trainer: Trainer) -> torch.Tensor:
        """Inputs the models are run on."""
        return trainer.sample_inputs(8)

    @pytest.fixture(autouse=True)
    def _single_thread(self) -> Iterator[None]:
        with one_torch_thread():
            yield

    def test_apply_gives_a_working_model(
        self,
        factory: Factory,
        model: nn.Module,
        teacher: nn.Module,
        trainer: Trainer,
        inputs: torch.Tensor,
    ) -> None:
        expected = _run(model, inputs)
        compressed = factory(teacher).apply(model, trainer)
        assert isinstance(compressed, nn.Module)
        out = _run(compressed, inputs)
        assert out.shape == expected.shape
        assert torch.isfinite(out).all()

    def test_options_record_the_constructor_arguments(
        self, factory: Factory, teacher: nn.Module
    ) -> None:
        compressor = factory(teacher)
        options = compressor.options
        parameters = inspect.signature(type(compressor)).parameters.values()
        named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        assert named <= set(options), sorted(named - set(options))
        rebuilt = type(compressor)(**options)
        assert _same(rebuilt.options, options)
        name = name_of("compressor", type(compressor))
        if name is not None:
            assert _same(build("compressor", name, **options).options, options)

    def test_pickle_gives_the_same_compressor(
        self,
        factory: Factory,
        model: nn.Module,
        teacher: nn.Module,
        trainer: Trainer,
        inputs: torch.Tensor,
    ) -> None:
        compressor = factory(teacher)
        clone = pickle.loads(pickle.dumps(compressor))
        assert type(clone) is type(compressor)
        assert _same(clone.options, compressor.options)
        ours = _run(compressor.apply(copy.deepcopy(model), trainer), inputs)
        theirs = _run(clone.apply(copy.deepcopy(model), trainer), inputs)
        torch.testing.assert_close(theirs, ours, atol=self.atol, rtol=0)

    def test_same_result_in_another_process(
        self,
        factory: Factory,
        model: nn.Module,
        teacher: nn.Module,
        trainer: Trainer,
        inputs: torch.Tensor,
    ) -> None:
        """The pickled compressor, model and trainer give the same outputs in a spawned
        process (PyTorch on one thread on both sides)."""
        payload = pickle.dumps((factory(teacher), model, trainer))
        theirs = run_in_subprocess(apply_pickled, payload, inputs)
        ours = apply_pickled(payload, inputs)
        torch.testing.assert_close(theirs, ours, atol=self.atol, rtol=0)


def build_compressor(name: str, teacher: nn.Module, **options: Any) -> Compressor:
    """``build("compressor", name, **options)``, with ``teacher`` when it takes one."""
    if "teacher" in inspect.signature(get("compressor", name)).parameters:
        options = {"teacher": teacher, **options}
    return build("compressor", name, **options)  # type: ignore[no-any-return]


def apply_pickled(payload: bytes, inputs: torch.Tensor) -> torch.Tensor:
    """Unpickle ``(compressor, model, trainer)``, compress, run on ``inputs`` (what the
    suite runs in a spawned process)."""
    compressor, model, trainer = pickle.loads(payload)
    with one_torch_thread():
        return _run(compressor.apply(model, trainer), inputs)


def _run(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(inputs)


def _same(a: Any, b: Any) -> bool:
    """Equal values; modules and tensors by their contents (pickling copies them)."""
    if isinstance(a, nn.Module) or isinstance(b, nn.Module):
        return type(a) is type(b) and _same(a.state_dict(), b.state_dict())
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if a == b:
        return True
    try:  # objects without __eq__ (an importance callable, an augmentation) after pickling
        return type(a) is type(b) and pickle.dumps(a) == pickle.dumps(b)
    except Exception:
        return False
