"""Every registered plugin passes the conformance suite of its kind (``nasforge.testing``,
the suites plugin authors reuse); strategies run in ``test_strategy_conformance.py``.

The cases are parametrised from ``nf.available(kind)``, so a new built-in is covered
without editing this file; a new evaluator, compressor or scheduler (they need
arguments) fails here until it has a factory in the tables below.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nasforge as nf
from nasforge.testing import (
    CompressorConformance,
    EvaluatorConformance,
    ExecutorConformance,
    SchedulerConformance,
    SpaceConformance,
    run_in_subprocess,
)

# --- spaces: options (not the defaults, so round trips carry them) and what build() takes
SPACES: dict[str, dict[str, Any]] = {
    "mlp": {"options": {"max_depth": 2, "widths": [8, 16]}, "input_shape": (1, 8, 8)},
    "cnn": {
        "options": {"max_stages": 2, "channels": [4, 8], "kernels": [3, 5]},
        "input_shape": (1, 8, 8),
    },
    "nb201": {"input_shape": (3, 8, 8), "build_options": {"channels": 4, "cells_per_stage": 1}},
    "transfer": {
        "options": {"backbone": "resnet18", "head_widths": [16, 32]},
        "input_shape": (3, 16, 16),
    },
    "compressed": {
        "options": {"base": {"name": "mlp", "options": {"max_depth": 1}}, "prune": [0.0, 0.5]},
        "input_shape": (1, 8, 8),
    },
}


def _tiny_table() -> tuple[nf.Space, nf.TabularBenchmark]:
    space = nf.Space(
        [nf.Choice("op", ["conv", "pool", "skip"]), nf.IntRange("depth", 1, 3)], name="tiny"
    )
    table = {}
    for arch in space.grid():
        code = zlib.crc32(arch.key.encode())
        table[arch.key] = {"val_acc": code % 1000 / 1000, "params": float(code % 97)}
    return space, nf.TabularBenchmark(table, name="tiny")


def _train_evaluator() -> tuple[nf.Space, nf.TrainEvaluator]:
    data = nf.load_dataset("synthetic", num_samples=120, input_shape=(6,), num_classes=3, seed=0)
    space = nf.build("space", "mlp", max_depth=1, widths=[8, 16])
    return space, nf.TrainEvaluator(space, data, epochs=1, latency=False)


def _compression_evaluator() -> tuple[nf.Space, nf.CompressionEvaluator]:
    data = nf.load_dataset("synthetic", num_samples=120, input_shape=(6,), num_classes=3, seed=0)
    base = nf.build("space", "mlp", max_depth=1, widths=[8, 16])
    space = nf.build("space", "compressed", base=base, prune=[0.0, 0.5])
    return space, nf.CompressionEvaluator(space, data, epochs=1, finetune_epochs=1, latency=False)


def _transfer_evaluator() -> tuple[nf.Space, nf.TransferEvaluator]:
    data = nf.load_dataset(
        "synthetic", num_samples=40, input_shape=(3, 16, 16), num_classes=3, seed=0
    )
    space = nf.build("space", "transfer", backbone="resnet18", head_widths=[16])
    return space, nf.TransferEvaluator(space, data, epochs=1, batch_size=16, latency=False)


def _proxy(name: str) -> Callable[[], tuple[nf.Space, Any]]:
    def make() -> tuple[nf.Space, Any]:
        space = nf.build("space", "nb201")
        tiny = {"channels": 4, "cells_per_stage": 1}
        if name == "synflow":
            return space, nf.build(
                "evaluator", name, space=space, input_shape=(3, 8, 8), build_options=tiny
            )
        data = nf.load_dataset(
            "synthetic", num_samples=40, input_shape=(3, 8, 8), num_classes=4, seed=0
        )
        return space, nf.build(
            "evaluator", name, space=space, data=data, batch_size=16, build_options=tiny
        )

    return make


def _supernet_evaluator() -> tuple[nf.Space, nf.SupernetEvaluator]:
    data = nf.load_dataset("synthetic", num_samples=60, input_shape=(1, 12), num_classes=3, seed=0)
    space = nf.build("space", "nb201")
    tiny = {"channels": 4, "cells_per_stage": 1}
    evaluator = nf.SupernetEvaluator(
        space, data, epochs=1, batch_size=16, calibration_batches=2, build_options=tiny
    )
    return space, evaluator


EVALUATORS: dict[str, Callable[[], tuple[nf.Space, Any]]] = {
    "tabular": _tiny_table,
    "train": _train_evaluator,
    "synflow": _proxy("synflow"),
    "naswot": _proxy("naswot"),
    "snip": _proxy("snip"),
    "supernet": _supernet_evaluator,
    "compression": _compression_evaluator,
    "transfer": _transfer_evaluator,
}

COMPRESSORS: dict[str, Callable[[Any], Any]] = {
    "channel_prune": lambda teacher: nf.build(
        "compressor", "channel_prune", ratio=0.5, finetune_epochs=1, bn_recalibration_batches=2
    ),
    "distill": lambda teacher: nf.build(
        "compressor", "distill", teacher=teacher, temperature=2.0, alpha=0.5, epochs=1
    ),
    "int8": lambda teacher: nf.build("compressor", "int8", calibration_batches=2),
    "magnitude_prune": lambda teacher: nf.build(
        "compressor",
        "magnitude_prune",
        sparsity=0.6,
        scope="global",
        schedule="agp",
        steps=2,
        finetune_epochs=1,
    ),
    "qat": lambda teacher: nf.build(
        "compressor", "qat", bits=4, epochs=1, bn_recalibration_batches=2
    ),
}

SCHEDULERS: dict[str, dict[str, Any]] = {
    "none": {},
    "successive_halving": {"min_budget": 0.5, "max_budget": 4.5, "eta": 3},
    "hyperband": {"min_budget": 1, "max_budget": 27, "eta": 3},
    "asha": {"min_budget": 1, "max_budget": 27, "eta": 3},
}

EXECUTORS: dict[str, dict[str, Any]] = {
    "serial": {"workers": 2},
    "process": {"workers": 2, "threads_per_worker": 1},
    "ray": {"workers": 2},
}

#: Plugins whose cases start a Ray cluster: marked slow and ray.
SLOW = {("executor", "ray")}


def registered(kind: str) -> list[Any]:
    """The registered names of ``kind``, as parameters (slow ones marked)."""
    return [
        pytest.param(name, marks=[pytest.mark.slow, pytest.mark.ray])
        if (kind, name) in SLOW
        else name
        for name in nf.available(kind)
    ]


def _factory_of(kind: str, table: dict[str, Any], name: str) -> Any:
    if name not in table:
        pytest.fail(f"{kind} {name!r} has no conformance factory: add one to {__file__}")
    return table[name]


@pytest.mark.parametrize(
    ("kind", "table"),
    [("evaluator", EVALUATORS), ("compressor", COMPRESSORS), ("scheduler", SCHEDULERS)],
)
def test_every_plugin_that_needs_arguments_has_a_factory(kind: str, table: dict) -> None:
    missing = sorted(set(nf.available(kind)) - set(table))
    assert not missing, f"registered {kind}s without a conformance factory here: {missing}"


class TestSpaces(SpaceConformance):
    @pytest.fixture(params=registered("space"))
    def name(self, request: pytest.FixtureRequest) -> str:
        return request.param

    @pytest.fixture
    def factory(self, name: str) -> Callable[[], nf.Space]:
        options = SPACES.get(name, {}).get("options", {})
        return lambda: nf.build("space", name, **options)

    @pytest.fixture
    def build_spec(self, name: str) -> tuple[tuple[int, ...], dict[str, Any]] | None:
        spec = SPACES.get(name, {})
        if "input_shape" not in spec:
            return None
        return spec["input_shape"], spec.get("build_options", {})


class TestEvaluators(EvaluatorConformance):
    @pytest.fixture(params=registered("evaluator"))
    def space_and_evaluator(self, request: pytest.FixtureRequest) -> tuple[nf.Space, Any]:
        return _factory_of("evaluator", EVALUATORS, request.param)()


class TestCompressors(CompressorConformance):
    @pytest.fixture(params=registered("compressor"))
    def factory(self, request: pytest.FixtureRequest) -> Callable[[Any], Any]:
        return _factory_of("compressor", COMPRESSORS, request.param)


class TestSchedulers(SchedulerConformance):
    @pytest.fixture(params=registered("scheduler"))
    def factory(self, request: pytest.FixtureRequest) -> Callable[[], Any]:
        name = request.param
        options = _factory_of("scheduler", SCHEDULERS, name)
        return lambda: nf.build("scheduler", name, **options)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One local Ray instance for this module's Ray cases; spawned processes join it."""
    ray = pytest.importorskip("ray")
    context = ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield context.address_info["gcs_address"]
    ray.shutdown()


class TestExecutors(ExecutorConformance):
    @pytest.fixture(params=registered("executor"))
    def factory(self, request: pytest.FixtureRequest) -> Callable[[], Any]:
        name = request.param
        options = dict(EXECUTORS.get(name, {}))
        if name == "ray":
            options["address"] = request.getfixturevalue("ray_address")
        return lambda: nf.build("executor", name, **options)


def test_run_in_subprocess_finds_a_module_that_is_not_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like a test module imported by pytest with ``--import-mode=importlib``: loaded
    from its file under a name that sys.path does not resolve. The function's error
    comes back with the child's traceback."""
    path = tmp_path / "plugins.py"
    path.write_text("def explode(x):\n    raise ValueError(f'exploded on {x}')\n")
    spec = importlib.util.spec_from_file_location("not_on_sys_path.plugins", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "not_on_sys_path", types.ModuleType("not_on_sys_path"))
    monkeypatch.setitem(sys.modules, "not_on_sys_path.plugins", module)
    with pytest.raises(ValueError, match="exploded on 3") as raised:
        run_in_subprocess(module.explode, 3)
    assert any("spawned process" in note for note in raised.value.__notes__)
