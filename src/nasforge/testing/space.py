"""The space conformance suite: membership and keys, reproducible sampling, mutation,
neighbours and crossover, encoding, canonical forms, dict/YAML round trips, pickling, a
round trip through another process, and the models that ``build`` makes."""

from __future__ import annotations

import inspect
import json
import pickle
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from nasforge.registry import build
from nasforge.space.base import Arch, Space
from nasforge.testing._spawn import run_in_subprocess

__all__ = ["SpaceConformance", "sample_keys"]

Factory = Callable[[], Space]
#: ``(input_shape, extra build options)`` for :meth:`Space.build`.
BuildSpec = tuple[tuple[int, ...], dict[str, Any]]


class SpaceConformance:
    """Pytest base class: every ``test_*`` checks one part of the space contract.

    Name a registered space, its options and the sample shape its models take (spaces
    that build no models leave ``input_shape`` unset), or override the ``factory`` and
    ``build_spec`` fixtures::

        from nasforge.testing import SpaceConformance

        class TestMySpace(SpaceConformance):
            space = "mine"
            options = {"max_depth": 2}
            input_shape = (1, 8, 8)
            build_options = {"channels": 4}   # extra keywords for space.build
    """

    #: Registered space name (used by the default ``factory`` fixture).
    space: ClassVar[str | None] = None
    #: Constructor options for the default factory.
    options: ClassVar[dict[str, Any]] = {}
    #: One sample's shape (no batch dimension) for ``build``; None if it builds no models.
    input_shape: ClassVar[tuple[int, ...] | None] = None
    #: Extra keyword arguments for ``build`` (e.g. a small width to keep tests fast).
    build_options: ClassVar[dict[str, Any]] = {}
    #: Classes of the models ``build`` makes.
    num_classes: ClassVar[int] = 3
    #: How many seeded samples each test looks at.
    samples: ClassVar[int] = 20

    @pytest.fixture
    def factory(self) -> Factory:
        """``factory() -> Space``; override to build your space yourself."""
        if self.space is None:
            pytest.fail("set `space = 'name'` or override the `factory` fixture")
        name, options = self.space, dict(self.options)
        return lambda: build("space", name, **options)

    @pytest.fixture
    def build_spec(self) -> BuildSpec | None:
        """``(input_shape, build options)`` for ``build``, or None if none was given."""
        if self.input_shape is None:
            return None
        return tuple(self.input_shape), dict(self.build_options)

    def _samples(self, space: Space) -> list[Arch]:
        return [space.sample(seed) for seed in range(self.samples)]

    def test_samples_are_members_and_keys_round_trip(self, factory: Factory) -> None:
        space = factory()
        for arch in self._samples(space):
            assert isinstance(arch, Arch)
            assert space.contains(arch), arch
            assert arch in space
            assert space.from_key(arch.key) == arch
            assert space.from_key(arch.key).to_dict() == arch.to_dict()
            assert space.arch(arch.to_dict()) == arch

    def test_same_seed_same_samples(self, factory: Factory) -> None:
        first, second = factory(), factory()
        assert [a.key for a in self._samples(first)] == [a.key for a in self._samples(second)]
        rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
        draws = [(first.sample(rng_a).key, second.sample(rng_b).key) for _ in range(10)]
        assert all(a == b for a, b in draws)
        a, b = first.sample(1), first.sample(2)
        assert first.mutate(a, 5).key == second.mutate(a, 5).key
        assert first.crossover(a, b, 5).key == second.crossover(a, b, 5).key

    def test_mutate_neighbors_crossover_give_members(self, factory: Factory) -> None:
        space = factory()
        archs = self._samples(space)
        for i, arch in enumerate(archs):
            mutant = space.mutate(arch, i)
            assert space.contains(mutant), (arch, mutant)
            for neighbor in space.neighbors(arch):
                assert space.contains(neighbor), (arch, neighbor)
            child = space.crossover(arch, archs[(i + 1) % len(archs)], i)
            assert space.contains(child), (arch, child)

    def test_encode_has_encoding_width_and_is_deterministic(self, factory: Factory) -> None:
        space = factory()
        for arch in self._samples(space):
            code = np.asarray(space.encode(arch))
            assert code.shape == (space.encoding_width,)
            assert np.all(np.isfinite(code.astype(float)))
            assert np.array_equal(code, space.encode(space.from_key(arch.key)))

    def test_canonical_is_a_member_and_idempotent(self, factory: Factory) -> None:
        space = factory()
        for arch in self._samples(space):
            canonical = space.canonical(arch)
            assert isinstance(canonical, Arch) and space.contains(canonical)
            assert space.canonical(canonical) == canonical

    def test_dict_round_trip(self, factory: Factory) -> None:
        space = factory()
        data = space.to_dict()
        assert json.loads(json.dumps(data)) == data  # plain data
        self._check_same_space(space, Space.from_dict(data))

    def test_yaml_round_trip(self, factory: Factory) -> None:
        space = factory()
        self._check_same_space(space, Space.from_yaml(space.to_yaml()))

    def test_pickle_round_trip(self, factory: Factory) -> None:
        space = factory()
        self._check_same_space(space, pickle.loads(pickle.dumps(space)))

    def test_samples_alike_in_another_process(self, factory: Factory) -> None:
        """A spawned process samples the same keys from the pickled space and from its
        ``to_dict()`` (one process per space)."""
        space = factory()
        seeds = list(range(self.samples))
        keys = [space.sample(seed).key for seed in seeds]
        canonical = [space.canonical(space.sample(seed)).key for seed in seeds]
        there = run_in_subprocess(sample_keys, pickle.dumps(space), space.to_dict(), seeds)
        assert there == (keys, canonical, keys)

    def test_build_gives_a_model(self, factory: Factory, build_spec: BuildSpec | None) -> None:
        space = factory()
        if type(space).build is Space.build:
            pytest.skip(f"{type(space).__name__} does not build models")
        if build_spec is None:
            pytest.fail("set `input_shape` (or override `build_spec`) to test build()")
        import torch
        from torch import nn

        input_shape, options = build_spec
        accepted = inspect.signature(space.build).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            options = {k: v for k, v in options.items() if k in accepted}  # where supported
        inputs = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
        for arch in self._samples(space)[:3]:
            model = space.build(
                arch, input_shape=input_shape, num_classes=self.num_classes, **options
            )
            assert isinstance(model, nn.Module)
            with torch.no_grad():
                out = model.eval()(inputs)
            assert tuple(out.shape) == (2, self.num_classes), (arch, tuple(out.shape))
            assert torch.isfinite(out).all()

    def _check_same_space(self, space: Space, copy: Space) -> None:
        assert type(copy) is type(space), (
            f"{type(space).__name__} came back as {type(copy).__name__}. HINT: register the "
            "space (@register('space', name)) so that to_dict() gives its name and options"
        )
        assert copy == space
        for seed in range(self.samples):
            arch = space.sample(seed)
            assert copy.sample(seed).key == arch.key
            assert copy.from_key(arch.key) == arch
            assert copy.canonical(arch).key == space.canonical(arch).key
            assert np.array_equal(copy.encode(arch), space.encode(arch))


def sample_keys(
    payload: bytes, data: dict[str, Any], seeds: Sequence[int]
) -> tuple[list[str], list[str], list[str]]:
    """Keys of the pickled space's samples, of their canonical forms, and of the samples of
    ``Space.from_dict(data)`` (what the suite runs in a spawned process)."""
    space: Space = pickle.loads(payload)
    rebuilt = Space.from_dict(data)
    return (
        [space.sample(seed).key for seed in seeds],
        [space.canonical(space.sample(seed)).key for seed in seeds],
        [rebuilt.sample(seed).key for seed in seeds],
    )
