"""``Arch`` and ``Space``: framework-free search-space value objects.

A :class:`Space` is an ordered list of parameters (see :mod:`nasforge.space.params`). It
samples, mutates, crosses over, lists neighbours, enumerates grids, encodes architectures
as numeric vectors and gives each one a canonical string key. Spaces compose
(``Space.compose(backbone=a, head=b)`` or ``a + b``) and round-trip through plain dicts and
YAML.

Example::

    from nasforge.space import Choice, IntRange, Space

    space = Space([IntRange("depth", 1, 3), Choice("act", ["relu", "gelu"])])
    arch = space.sample(seed=0)
    arch.key                       # 'depth=2|act=gelu'
    space.from_key(arch.key) == arch
    Space.from_dict(space.to_dict()) == space
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from nasforge import registry
from nasforge._options import Configurable
from nasforge.errors import ConfigError, close_matches
from nasforge.space.params import PARAM_TYPES, Choice, Fixed, Param
from nasforge.validation import check_int, check_str

__all__ = ["Arch", "Space"]


class Arch(Mapping[str, Any]):
    """An immutable architecture: parameter name -> value, with a canonical :attr:`key`.

    Equality and hashing go by ``key``, so two archs are the same exactly when their keys
    are. Archs are made by a space (``space.arch({...})``, ``space.sample()``,
    ``space.from_key(...)``), which validates the values and computes the key.
    """

    __slots__ = ("_key", "_values")

    def __init__(self, values: Mapping[str, Any], key: str) -> None:
        self._values = MappingProxyType(dict(values))
        self._key = key

    @property
    def key(self) -> str:
        """The canonical string of this architecture (e.g. an NB201 cell string)."""
        return self._key

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Arch):
            return self._key == other._key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Arch({self._key!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (spawned workers, Ray) as plain data
        return (Arch, (dict(self._values), self._key))

    def to_dict(self) -> dict[str, Any]:
        """The plain ``{name: value}`` dict (active parameters only)."""
        return dict(self._values)


def _as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class Space(Configurable):
    """An ordered collection of named parameters; conditional ones follow their parents.

    ``Space(params, name="...")`` validates at construction: names must be unique, and
    every parent named in a ``when`` condition must come earlier and allow the listed values.
    Subclasses (like the NB201 cell space) may override :meth:`format_key`/:meth:`parse_key`,
    :meth:`canonical` and :meth:`build`; registered as a ``space`` plugin, a subclass
    round-trips through :meth:`to_dict`/:meth:`from_dict` (and YAML) by its registered name
    and constructor options, which it records automatically.
    """

    #: Registry-style name used in reprs and ``to_dict``.
    name: str = "space"

    def __init__(self, params: Sequence[Param], *, name: str = "space") -> None:
        params = tuple(params)
        if not params:
            raise ConfigError.invalid("space.params", [], "at least one parameter")
        seen: dict[str, Param] = {}
        for p in params:
            if not isinstance(p, Param):
                raise ConfigError.invalid(
                    "space.params", p, "Param objects (Choice, IntRange, FloatRange, Fixed)"
                )
            if p.name in seen:
                raise ConfigError.invalid(
                    f"space.params.{p.name}", p.name, "a unique name", hint="rename one of them"
                )
            for parent, allowed in p.when:
                if parent not in seen:
                    raise ConfigError.invalid(
                        f"{p.name}.when",
                        parent,
                        f"a parameter defined before {p.name!r} (defined so far: {list(seen)})",
                        hint="list parents before their children." + close_matches(parent, seen),
                    )
                bad = [v for v in allowed if not seen[parent].contains(v)]
                if bad:
                    raise ConfigError.invalid(
                        f"{p.name}.when.{parent}", bad[0], f"a value of {parent!r}"
                    )
            seen[p.name] = p
        self.params: tuple[Param, ...] = params
        self.name = name
        self._by_name = seen
        self._parents = {parent for p in params for parent, _ in p.when}
        self._conditional = any(p.when for p in params)
        self._offsets: dict[str, int] = {}
        width = 0
        for p in params:
            self._offsets[p.name] = width
            width += p.width + (1 if p.when and p.width == 1 else 0)
        self._width = width

    # --- construction from data -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        """Build a space from ``{"name": ..., "params": {name: spec, ...}}``, or a registered
        space from ``{"name": "mlp", "options": {...}}`` (what :meth:`to_dict` gives for one).

        A spec is ``{"type": "choice", "choices": [...]}``, ``{"type": "int", "low": 1,
        "high": 4}``, ``{"type": "float", "low": 0.0, "high": 0.5, "log": false}`` or
        ``{"type": "fixed", "value": 3}``, each with an optional ``"when": {parent: [...]}``.
        Shorthands: a list means a choice, a scalar means a fixed value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError.invalid(
                "space", data, "a mapping with a 'params' or an 'options' entry"
            )
        unknown = set(data) - {"name", "params", "options"}
        if unknown or ("params" in data and "options" in data):
            raise ConfigError.invalid(
                "space",
                sorted(unknown, key=str)[0] if unknown else sorted(data),
                "the keys 'name' and either 'params' (parameters) or 'options' (a registered "
                "space's constructor options)",
            )
        if "params" not in data:  # a registered space, by name and options
            name, options = data.get("name"), data.get("options", {})
            if not isinstance(name, str) or name.lower() not in registry.available("space"):
                raise ConfigError.invalid(
                    "space.name",
                    name,
                    f"a registered space ({', '.join(registry.available('space'))})",
                    hint="or give the parameters under 'params'",
                )
            if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
                raise ConfigError.invalid("space.options", options, "a mapping of options")
            built = registry.build("space", name, **options)
            if not isinstance(built, Space):
                raise ConfigError.invalid("space.name", name, "a space plugin that builds a Space")
            return built
        specs = data.get("params")
        if not isinstance(specs, Mapping) or not specs:
            raise ConfigError.invalid(
                "space.params", specs, "a non-empty mapping of parameter name -> spec"
            )
        params = [_param_from_spec(str(n), spec) for n, spec in specs.items()]
        return Space(params, name=check_str(data.get("name", "space"), "space.name"))

    @classmethod
    def from_yaml(cls, source: str | Path) -> Space:
        """Build a space from a YAML file path or YAML text (same schema as :meth:`from_dict`)."""
        import yaml

        text = source
        is_path = isinstance(source, Path) or (
            "\n" not in source and Path(source).suffix in (".yaml", ".yml")
        )
        if is_path:
            path = Path(source)
            if not path.exists():
                raise ConfigError.invalid("space", str(source), "an existing YAML file")
            text = path.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"space: not valid YAML: {exc}", field="space") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` turns back into an equal space: the parameters,
        or for a registered subclass its registered name and constructor options."""
        if type(self) is not Space:
            name = registry.name_of("space", type(self))
            if name is not None:
                return {"name": name, "options": _plain(self.options)}
        return {"name": self.name, "params": {p.name: p.to_dict() for p in self.params}}

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML text (:meth:`from_yaml` reads it back)."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def compose(cls, *spaces: Space, **named: Space) -> Space:
        """Concatenate spaces; keyword spaces get their parameter names prefixed ``name.``.

        ``Space.compose(backbone=a, head=b)`` has parameters ``backbone.depth``, ...
        """
        params: list[Param] = []
        for s in spaces:
            params.extend(s.params)
        for prefix, s in named.items():
            params.extend(p.renamed(f"{prefix}.") for p in s.params)
        return Space(params, name="+".join([s.name for s in spaces] + list(named)))

    def __add__(self, other: Space) -> Space:
        if not isinstance(other, Space):
            return NotImplemented
        return Space.compose(self, other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.params)))

    def __repr__(self) -> str:
        size = self.size
        return (
            f"{type(self).__name__}(name={self.name!r}, params={len(self.params)}, "
            f"size={size if size is not None else 'inf'})"
        )

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError.invalid(
                "param",
                name,
                f"one of {list(self._by_name)}",
                hint=close_matches(str(name), self._by_name).strip() or None,
            ) from None

    def __len__(self) -> int:
        return len(self.params)

    # --- archs ------------------------------------------------------------------------------
    def format_key(self, values: Mapping[str, Any]) -> str:
        """The canonical key: ``name=value`` for active parameters, in definition order."""
        return "|".join(
            f"{p.name}={p.format(values[p.name])}" for p in self.params if p.name in values
        )

    def parse_key(self, key: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for part in key.split("|") if key else []:
            name, sep, text = part.partition("=")
            if not sep:
                raise ConfigError.invalid("key", key, "'name=value' parts joined by '|'")
            values[name] = self[name].parse(text)
        return values

    def arch(self, values: Mapping[str, Any]) -> Arch:
        """Validate ``values`` (active parameters only; fixed ones may be left out)."""
        if isinstance(values, Arch):
            values = values.to_dict()
        out: dict[str, Any] = {}
        for p in self.params:
            if not p.active(out):
                if p.name in values:
                    raise ConfigError.invalid(
                        p.name,
                        values[p.name],
                        f"absent: it is only active when {dict(p.when)}",
                    )
                continue
            if p.name not in values:
                if isinstance(p, Fixed):
                    out[p.name] = p.value
                    continue
                raise ConfigError.invalid(p.name, "(missing)", f"a value ({p.to_dict()})")
            value = values[p.name]
            if not p.contains(value):
                raise ConfigError.invalid(p.name, value, _describe(p))
            if isinstance(value, np.generic):
                value = value.item()
            out[p.name] = value
        unknown = set(values) - set(self._by_name)
        if unknown:
            name = sorted(unknown, key=str)[0]
            raise ConfigError.invalid(
                "arch",
                name,
                f"parameters of this space: {list(self._by_name)}",
                hint=close_matches(str(name), self._by_name).strip() or None,
            )
        return Arch(out, self.format_key(out))

    def _make(self, values: dict[str, Any]) -> Arch:
        """Wrap already valid values (internal, no validation)."""
        return Arch(values, self.format_key(values))

    def from_key(self, key: str) -> Arch:
        """The arch whose :attr:`Arch.key` is ``key`` (validated)."""
        return self.arch(self.parse_key(key))

    def contains(self, arch: Arch | Mapping[str, Any]) -> bool:
        """Whether ``arch`` is a valid member of this space."""
        try:
            made = self.arch(arch)
        except ConfigError:
            return False
        return not isinstance(arch, Arch) or made.key == arch.key

    def canonical(self, arch: Arch) -> Arch:
        """The representative of the archs that compute the same function as ``arch``.

        Strategies treat an arch as seen when an arch with the same canonical form was, so
        no query is spent on a network that was already evaluated. The default is ``arch``
        itself (every arch is distinct); spaces with redundant encodings override it
        (``nb201``: dead edges, identity edges and the order of summed inputs do not change
        the network).
        """
        return arch

    @property
    def distinct_size(self) -> int | None:
        """Number of distinct canonical archs (:meth:`canonical`); ``None`` if infinite.

        Counted by enumeration when a subclass overrides :meth:`canonical` and the space has
        at most 100,000 archs; otherwise :attr:`size` (an upper bound). Override it for
        large spaces with equivalences.
        """
        size = self.size
        if size is None or size > 100_000 or type(self).canonical is Space.canonical:
            return size
        resolution = max(2, max((p.size or 2) for p in self.params))
        return len({self.canonical(arch).key for arch in self.grid(resolution)})

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Mapping) and self.contains(arch)

    def _complete(
        self, values: Mapping[str, Any], rng: np.random.Generator | None
    ) -> dict[str, Any]:
        """Keep the values of active parameters, fill newly active ones (sampled with ``rng``,
        or the default value), drop inactive ones."""
        if not self._conditional:  # fast path: every parameter is always active
            if len(values) == len(self.params):
                return dict(values)
            return {
                p.name: values[p.name]
                if p.name in values
                else (p.sample(rng) if rng is not None else p.default)
                for p in self.params
            }
        out: dict[str, Any] = {}
        for p in self.params:
            if not p.active(out):
                continue
            if p.name in values:
                out[p.name] = values[p.name]
            else:
                out[p.name] = p.sample(rng) if rng is not None else p.default
        return out

    def sample(self, seed: int | np.random.Generator | None = None) -> Arch:
        """A random arch: each active parameter drawn independently."""
        rng = _as_rng(seed)
        return self._make(self._complete({}, rng))

    def mutate(
        self, arch: Arch, seed: int | np.random.Generator | None = None, *, n: int = 1
    ) -> Arch:
        """Change ``n`` distinct active parameters (fewer if the arch has fewer); newly
        activated conditional parameters are sampled, deactivated ones dropped."""
        rng = _as_rng(seed)
        values = arch.to_dict()
        changed: set[str] = set()
        for _ in range(n):
            free = [
                p
                for p in self.params
                if p.name in values and p.name not in changed and (p.size or 2) > 1
            ]
            if not free:
                break
            p = free[int(rng.integers(len(free)))]
            changed.add(p.name)
            values[p.name] = p.mutate(values[p.name], rng)
            values = self._complete(values, rng)
        return self._make(values)

    def neighbors(self, arch: Arch) -> list[Arch]:
        """All archs one parameter change away (float ranges move by a fixed step, integer
        ranges to adjacent values); newly active parameters take their default value."""
        values = arch.to_dict()
        out = []
        for p in self.params:
            if p.name not in values:
                continue
            for v in p.neighbors(values[p.name]):
                changed = dict(values)
                changed[p.name] = v
                out.append(self._make(self._complete(changed, None)))
        return out

    def crossover(self, a: Arch, b: Arch, seed: int | np.random.Generator | None = None) -> Arch:
        """Uniform crossover: each active parameter taken from ``a`` or ``b`` at random."""
        rng = _as_rng(seed)
        out: dict[str, Any] = {}
        for p in self.params:
            if not p.active(out):
                continue
            options = [x[p.name] for x in (a, b) if p.name in x]
            if not options:
                out[p.name] = p.sample(rng)
            else:
                out[p.name] = options[int(rng.integers(len(options)))]
        return self._make(out)

    # --- size and enumeration ---------------------------------------------------------------
    @property
    def size(self) -> int | None:
        """Number of distinct archs, or ``None`` if the space has a float range."""
        return self._count(0, {})

    @property
    def finite(self) -> bool:
        return self.size is not None

    def _count(self, i: int, values: dict[str, Any]) -> int | None:
        if i == len(self.params):
            return 1
        p = self.params[i]
        if not p.active(values):
            return self._count(i + 1, values)
        if p.size is None:
            return None
        if p.name not in self._parents:
            rest = self._count(i + 1, values)
            return None if rest is None else p.size * rest
        total = 0
        for v in p.grid(p.size):
            values[p.name] = v
            rest = self._count(i + 1, values)
            del values[p.name]
            if rest is None:
                return None
            total += rest
        return total

    def grid(self, resolution: int = 5) -> Iterator[Arch]:
        """Every arch of the grid in lexicographic order (the last parameter varies fastest);
        float ranges (and integer ranges wider than ``resolution``) contribute ``resolution``
        evenly spaced values."""
        check_int(resolution, "resolution", low=2)

        def walk(i: int, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(self.params):
                yield dict(values)
                return
            p = self.params[i]
            if not p.active(values):
                yield from walk(i + 1, values)
                return
            for v in p.grid(resolution):
                values[p.name] = v
                yield from walk(i + 1, values)
                del values[p.name]

        for values in walk(0, {}):
            yield self._make(values)

    # --- encoding ---------------------------------------------------------------------------
    @property
    def encoding_width(self) -> int:
        """Length of :meth:`encode`'s vector."""
        return self._width

    def encode(self, arch: Arch) -> np.ndarray:
        """A float vector: one-hot blocks for choices, [0, 1]-scaled numbers for ranges
        (log-scaled when ``log``), zeros for inactive parameters (numeric conditional
        parameters add an "active" flag)."""
        out = np.zeros(self._width)
        for p in self.params:
            if p.name not in arch:
                continue
            j = self._offsets[p.name]
            enc = p.encode(arch[p.name])
            out[j : j + len(enc)] = enc
            if p.when and p.width == 1:
                out[j + 1] = 1.0
        return out

    def encode_blocks(self) -> list[tuple[str, int, int]]:
        """``(param name, start, stop)`` of each parameter's slice of :meth:`encode`."""
        blocks = []
        for p in self.params:
            j = self._offsets[p.name]
            w = p.width + (1 if p.when and p.width == 1 else 0)
            if w:
                blocks.append((p.name, j, j + w))
        return blocks

    def build(self, arch: Arch, **options: Any) -> Any:
        """Turn ``arch`` into a model; only spaces that describe networks implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} {self.name!r} does not build models; use a space such "
            "as 'mlp', 'cnn' or 'nb201', or subclass Space and implement build()"
        )

    def supernet(self, **options: Any) -> Any:
        """One ``nn.Module`` holding every arch of this space in shared weights, for
        weight-sharing search (:class:`~nasforge.space.supernet.Supernet`). Cell spaces
        implement it: return a network in which every parameter (an unconditional
        :class:`Choice`) is a ``MixedOp(name, {value: module, ...})``; ``options`` are
        those of :meth:`build`. docs/oneshot.md shows a complete one."""
        raise NotImplementedError(
            f"{type(self).__name__} {self.name!r} has no supernet; 'nb201' has one, and a "
            "cell space of your own gets one by implementing Space.supernet() "
            "(see docs/oneshot.md)"
        )


def _plain(value: Any) -> Any:
    """Options as plain YAML/JSON data: tuples become lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _describe(p: Param) -> str:
    if isinstance(p, Choice):
        return f"one of {list(p.choices)}"
    spec = p.to_dict()
    spec.pop("when", None)
    spec.pop("type", None)
    if "value" in spec:
        return f"{spec['value']!r}"
    return f"a {p.kind} in [{spec['low']}, {spec['high']}]"


def _param_from_spec(name: str, spec: Any) -> Param:
    if isinstance(spec, Param):
        return spec
    if isinstance(spec, (list, tuple)):
        return Choice(name, list(spec))
    if not isinstance(spec, Mapping):
        return Fixed(name, spec)
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind is None:
        kind = "choice" if "choices" in spec else "fixed" if "value" in spec else None
    if not isinstance(kind, str) or kind not in PARAM_TYPES:
        raise ConfigError.invalid(
            f"space.params.{name}.type",
            kind,
            f"one of {sorted(PARAM_TYPES)}",
            hint=close_matches(str(kind), PARAM_TYPES).strip() or None,
        )
    cls = PARAM_TYPES[kind]
    allowed = {"when"} | set(cls(**_example(kind))._fields())
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError.invalid(
            f"space.params.{name}",
            sorted(unknown, key=str)[0],
            f"one of the fields {sorted(allowed)}",
        )
    missing = [f for f in _REQUIRED_FIELDS[kind] if f not in spec]
    if missing:
        raise ConfigError(
            f"space.params.{name}: the {kind} parameter needs {' and '.join(missing)}",
            field=f"space.params.{name}.{missing[0]}",
        )
    try:
        return cls(name, **spec)
    except TypeError as exc:
        raise ConfigError(f"space.params.{name}: {exc}", field=f"space.params.{name}") from None


_REQUIRED_FIELDS = {
    "choice": ("choices",),
    "int": ("low", "high"),
    "float": ("low", "high"),
    "fixed": ("value",),
}


def _example(kind: str) -> dict[str, Any]:
    return {
        "choice": {"name": "x", "choices": [0]},
        "int": {"name": "x", "low": 0, "high": 1},
        "float": {"name": "x", "low": 0.0, "high": 1.0},
        "fixed": {"name": "x", "value": 0},
    }[kind]
