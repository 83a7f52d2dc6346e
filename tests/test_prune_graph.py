"""The channel dependency graph (nasforge.compress.prune.graph), operation by operation:
which channels a concatenation, a reduction, a flatten or an addition couples, and which it
fences off, with the reason that ``graph.fixed`` gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.compress.prune import build_graph, prune_channels


def analyse(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``({group name: sorted module names}, {module: reason it is fixed})``."""
    graph = build_graph(model.eval(), x)
    groups = {g.name: sorted({m.module_name for m in g.members}) for g in graph.groups}
    return groups, graph.fixed


IMAGES = torch.randn(2, 3, 4, 4)


class Concat(nn.Module):
    """Three 4-channel convs, concatenated as ``join`` says, then a norm and a conv."""

    def __init__(self, join, wide: bool = True) -> None:
        super().__init__()
        self.join, self.wide = join, wide
        self.a, self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)
        self.head4 = nn.Conv2d(4, 2, 1)
        self.register_buffer("constant", torch.zeros(2, 4, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        joined = self.join(self, self.a(x), self.b(x), self.c(x))
        if self.wide:
            return self.head(self.bn(joined))
        return self.head4(joined)


@pytest.mark.parametrize(
    "join",
    [
        lambda m, a, b, c: torch.cat([a, b], dim=1),
        lambda m, a, b, c: torch.cat((a, b), 1),
        lambda m, a, b, c: torch.cat([a, b], dim=-3),
        lambda m, a, b, c: torch.cat(tensors=[a, b], dim=1),
        lambda m, a, b, c: torch.concat([a, b], 1),
        lambda m, a, b, c: torch.concatenate([a, b], 1),
    ],
    ids=["dim=1", "positional", "dim=-3", "tensors=", "concat", "concatenate"],
)
def test_channel_concatenation_keeps_each_part_prunable(join):
    groups, fixed = analyse(Concat(join), IMAGES)
    assert groups["a"] == ["a", "bn", "head"] and groups["b"] == ["b", "bn", "head"]
    assert fixed == {"head": "model output"}


@pytest.mark.parametrize(
    "join",
    [
        lambda m, a, b, c: torch.cat([a, b, c], dim=2),
        lambda m, a, b, c: torch.cat([a, b, c], dim=-1),
        lambda m, a, b, c: torch.cat([a, b, c]),
    ],
    ids=["dim=2", "dim=-1", "batch"],
)
def test_concatenation_along_other_dimensions_couples_the_parts(join):
    groups, fixed = analyse(Concat(join, wide=False), IMAGES)
    assert groups == {"a": ["a", "b", "c", "head4"]}
    assert fixed == {"head4": "model output"}


def test_concatenating_one_tensor_changes_nothing():
    groups, _ = analyse(Concat(lambda m, a, b, c: torch.cat([a], dim=2), wide=False), IMAGES)
    assert groups["a"] == ["a", "head4"]


def test_concatenation_with_an_unknown_tensor_is_fenced_off():
    groups, fixed = analyse(Concat(lambda m, a, b, c: torch.cat([a, m.constant], 1)), IMAGES)
    assert "a" not in groups
    assert fixed["a"] == fixed["bn"] == "concatenation of unknown tensors"


class Reduce(nn.Module):
    def __init__(self, reduce) -> None:
        super().__init__()
        self.reduce = reduce
        self.a = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)
        self.p = nn.Parameter(torch.zeros(2, 4, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.reduce(self, self.a(x))))


@pytest.mark.parametrize(
    "reduce",
    [
        lambda m, a: a.mean((2, 3)),
        lambda m, a: a.mean(dim=(2, 3)),
        lambda m, a: a.sum((-2, -1)),
        lambda m, a: a.mean(-1).amax(2),
        lambda m, a: torch.amin(a, dim=3).mean(dim=-1),
    ],
    ids=["tuple", "dim=", "negative", "int", "function"],
)
def test_reducing_the_pixels_keeps_the_channels(reduce):
    groups, fixed = analyse(Reduce(reduce), IMAGES)
    assert groups == {"a": ["a", "bn", "fc"]}
    assert fixed == {"fc": "model output"}


@pytest.mark.parametrize(
    ("reduce", "reason"),
    [
        (lambda m, a: a.sum(1).mean((1, 2))[:, None].expand(-1, 4), "sum over the channels"),
        (lambda m, a: a.sum(-3).mean((1, 2))[:, None].expand(-1, 4), "sum over the channels"),
        (lambda m, a: a.sum(0, keepdim=True).mean((2, 3)).expand(2, -1), "sum over the channels"),
        (lambda m, a: a.mean().expand(2, 4), "mean over all dimensions"),
    ],
    ids=["channels", "channels-negative", "batch", "all"],
)
def test_reducing_the_channels_or_everything_fences_them_off(reduce, reason):
    groups, fixed = analyse(Reduce(reduce), IMAGES)
    assert groups == {}
    assert fixed["a"] == reason


def test_reducing_a_parameter_fences_off_what_reads_it():
    groups, fixed = analyse(Reduce(lambda m, a: m.p.mean((2, 3)) + a.mean((2, 3))), IMAGES)
    assert groups == {}
    assert fixed["a"] == fixed["bn"] == "mean of an unknown tensor"


@pytest.mark.parametrize(
    "flat",
    [lambda p: torch.flatten(p, 1), lambda p: p.view(p.size(0), -1)],
    ids=["flatten", "view"],
)
def test_flattening_a_parameter_fences_off_what_reads_it(flat):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.zeros(2, 8, 2, 2))
            self.bn = nn.BatchNorm1d(32)
            self.e = nn.Conv2d(3, 8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(flat(self.p)).sum() + self.e(x).sum()

    _, fixed = analyse(Net(), IMAGES)
    assert fixed["bn"] in ("flatten of an unknown tensor", "view of an unknown tensor")


class Add(nn.Module):
    """Sums of concatenations whose parts do not line up."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.a, self.b = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 5, 1)
        self.c, self.d = nn.Conv2d(3, 5, 1), nn.Conv2d(3, 3, 1)
        self.e = nn.Conv2d(3, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = torch.cat([self.a(x), self.b(x)], 1)
        if self.mode == "parts":
            right = self.e(x)
        elif self.mode == "sizes":
            right = torch.cat([self.c(x), self.d(x)], 1)
        else:
            right = torch.cat([self.d(x), self.c(x)], 1)
        return self.head(self.bn(left + right))


@pytest.mark.parametrize(("mode", "modules"), [("parts", "abe"), ("sizes", "abcd")])
def test_adding_tensors_whose_channels_do_not_line_up_fences_them_off(mode, modules):
    groups, fixed = analyse(Add(mode), IMAGES)
    assert groups == {}
    reason = "add of differently concatenated tensors"
    assert {m: fixed[m] for m in [*modules, "bn"]} == dict.fromkeys([*modules, "bn"], reason)


def test_adding_tensors_whose_channels_line_up_couples_them():
    groups, fixed = analyse(Add("aligned"), IMAGES)
    assert groups == {"a": ["a", "bn", "d", "head"], "b": ["b", "bn", "c", "head"]}
    assert fixed == {"head": "model output"}


def test_adding_feature_vectors_couples_them():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(4, 6), nn.Linear(4, 6), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.fc1(x) + self.fc2(x) * 2)

    groups, fixed = analyse(Net(), torch.randn(2, 4))
    assert groups == {"fc1": ["fc1", "fc2", "out"]}
    assert fixed == {"out": "model output"}


def test_arithmetic_on_sizes_is_not_an_operation_on_channels():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.e(x)).view(x.size(0) * 1, -1)

    groups, fixed = analyse(Net(), IMAGES)
    assert groups == {"e": ["e", "head"]}
    assert fixed == {"head": "model output"}


@pytest.mark.parametrize(
    ("middle", "reason"),
    [
        (lambda m, y: torch.roll(y, 1, 1), "operation 'roll' is not understood"),
        (lambda m, y: m.ln(y), "ln (LayerNorm) is not understood"),  # over the pixels
    ],
    ids=["roll", "LayerNorm-W"],
)
def test_the_output_of_an_operation_not_understood_is_fixed_too(middle, reason):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e, self.bn, self.head = nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1)
            self.ln = nn.LayerNorm(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.bn(middle(self, self.e(x))))

    groups, fixed = analyse(Net(), IMAGES)
    assert groups == {}
    assert fixed["e"] == fixed["bn"] == reason


def test_reprs_summarise_groups_and_the_graph():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    graph = build_graph(model.eval(), IMAGES)
    (group,) = graph.groups
    assert repr(group) == "ChannelGroup('0', size=4, modules=['0', '1', '3'])"
    assert repr(graph) == "DependencyGraph(1 prunable groups, 1 modules with fixed channels)"
    assert group.producers == ["0"]


def test_concatenating_chunks_or_misaligned_parts_fences_them_off():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 3, 1)
            self.c, self.e = nn.Conv2d(3, 5, 1), nn.Conv2d(3, 8, 1)
            self.bn, self.head = nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            halves = torch.cat(self.a(x).chunk(2, 1), 1)  # a list the tracer cannot see into
            parts = torch.cat([self.b(x), self.c(x)], 1)  # 3 + 5 channels
            stacked = torch.cat([parts, self.e(x)], dim=2)  # along the rows: parts must match
            return halves.sum() + self.head(self.bn(stacked)).sum()

    groups, fixed = analyse(Net(), IMAGES)
    assert groups == {}
    assert fixed["a"] == "operation 'chunk' is not understood"
    reason = "concatenation of differently shaped tensors"
    assert [fixed[m] for m in ("b", "c", "e", "bn")] == [reason] * 4


class Scaled(nn.Module):
    """A conv whose output goes through ``scale`` (an elementwise op) to a norm and a conv."""

    def __init__(self, scale) -> None:
        super().__init__()
        self.scale = scale
        self.e, self.bn, self.head = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)
        self.gain = nn.Parameter(torch.full((1,), 2.0))
        self.bias = nn.Parameter(torch.zeros(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.scale(self, self.e(x))))


@pytest.mark.parametrize(
    "scale",
    [
        lambda m, y: m.gain * y,
        lambda m, y: y * m.gain,
        lambda m, y: y / y.size(1),
        lambda m, y: y.size(1) * y,
    ],
    ids=["scalar-first", "scalar-last", "by-size", "size-first"],
)
def test_scaling_by_a_scalar_keeps_the_channels_prunable(scale):
    groups, fixed = analyse(Scaled(scale), IMAGES)
    assert groups == {"e": ["bn", "e", "head"]}
    assert fixed == {"head": "model output"}


@pytest.mark.parametrize("op", ["add", "mul"])
def test_a_parameter_with_its_own_channels_is_pruned_with_them(op):
    combine = {"add": lambda m, y: y + m.bias, "mul": lambda m, y: m.bias * y}[op]
    groups, fixed = analyse(Scaled(combine), IMAGES)
    assert groups == {"e": ["", "bn", "e", "head"]}  # "": the model's own parameter
    assert fixed == {"head": "model output"}
    small = prune_channels(Scaled(combine), IMAGES, ratio=0.5)
    assert small.bias.shape == (1, 2, 1, 1) and small(IMAGES).shape == (2, 2, 4, 4)


def test_a_parameter_that_broadcasts_into_the_channels_fences_them_off():
    combine = lambda m, y: y.sum(1, keepdim=True) + m.bias  # noqa: E731
    _, fixed = analyse(Scaled(combine), IMAGES)
    assert fixed["e"] == "sum over the channels"
    assert fixed["bn"] == "add broadcasts over channels"


class Gate(nn.Module):
    """A two-channel tensor times a one-channel gate computed from it (spatial attention)."""

    def __init__(self, vectors: bool, gate_first: bool) -> None:
        super().__init__()
        self.gate_first = gate_first
        layer = nn.Linear if vectors else lambda i, o: nn.Conv2d(i, o, 1)
        self.e, self.att, self.head = layer(4 if vectors else 3, 2), layer(2, 1), layer(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.e(x)
        gate = torch.sigmoid(self.att(y))
        return self.head(gate * y if self.gate_first else y * gate)


@pytest.mark.parametrize("gate_first", [True, False], ids=["gate-first", "gate-last"])
@pytest.mark.parametrize("vectors", [False, True], ids=["images", "vectors"])
def test_a_gate_broadcast_along_the_channels_does_not_couple_them(vectors, gate_first):
    x = torch.randn(2, 4) if vectors else IMAGES
    groups, fixed = analyse(Gate(vectors, gate_first), x)
    assert groups == {"e": ["att", "e", "head"]}
    assert fixed == {"head": "model output"}


def test_arithmetic_on_one_element_tensors_makes_fixed_channels():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(1, 1))
            self.bn = nn.BatchNorm1d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.bn(self.gain * self.gain)

    _, fixed = analyse(Net(), torch.randn(2, 4))
    assert fixed == {"bn": "mul of constants"}


def test_adding_tuples_of_tensors_fences_off_their_channels():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            chunks = self.a(x).chunk(2, 1)  # a tuple the tracer cannot unpack, only add to
            return self.head(torch.cat(chunks + (self.b(x),), 1))  # noqa: RUF005

    groups, fixed = analyse(Net(), IMAGES)
    assert groups == {}
    assert fixed["a"] == "operation 'chunk' is not understood"
    assert fixed["b"] == "add of non-channel tensors"


def test_pruning_a_concatenation_of_three_keeps_what_each_part_computed():
    """With the removed channels zeroed instead, the original gives the same outputs."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = nn.ModuleList(nn.Conv2d(3, 4, 1) for _ in range(3))
            self.head = nn.Conv2d(12, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.cat([part(x) for part in self.parts], 1))

    torch.manual_seed(0)
    model = Net().eval()
    importance = lambda group: torch.arange(group.size, 0, -1).float()  # noqa: E731
    # the first half of parts 0 and 2; part 1 stays whole
    small = prune_channels(model, IMAGES, ratio=0.5, importance=importance, keep={"parts.1": 4})
    assert [part.out_channels for part in small.parts] == [2, 4, 2]
    with torch.no_grad():
        for part in (model.parts[0], model.parts[2]):
            part.weight[2:] = 0
            part.bias[2:] = 0
    torch.testing.assert_close(small(IMAGES), model(IMAGES))


@pytest.mark.parametrize(
    "first",
    [lambda: nn.BatchNorm2d(3), lambda: nn.Conv2d(3, 3, 3, padding=1, groups=3)],
    ids=["norm", "depthwise"],
)
def test_a_layer_that_keeps_the_input_channels_is_fixed_as_the_model_input(first):
    model = nn.Sequential(first(), nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1))
    groups, fixed = analyse(model, IMAGES)
    assert groups == {"1": ["1", "2"]}
    assert fixed == {"0": "model input", "2": "model output"}


def test_a_layer_called_with_keywords_only_has_an_unknown_input():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e, self.bn, self.head = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.bn(input=self.e(x)))

    groups, fixed = analyse(Net(), IMAGES)
    assert groups == {}
    assert fixed == {"e": "bn (BatchNorm2d) has unknown input", "head": "model output"}


def test_the_specs_tell_the_pruner_how_each_layer_is_sliced():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 4, 3, padding=1, groups=4),
        nn.Flatten(),
        nn.Linear(64, 6),
        nn.LayerNorm(6),
        nn.Linear(6, 2),
    )
    graph = build_graph(model.eval(), IMAGES)
    kinds = {name: spec.kind for name, spec in graph.specs.items()}
    assert kinds == {
        "0": "conv",
        "1": "norm",
        "2": "depthwise",
        "4": "linear",
        "5": "norm",
        "6": "linear",
    }


class Split(nn.Module):
    """Conv ``a`` (4 channels) -> ``middle`` -> ``head``."""

    def __init__(self, middle: nn.Module) -> None:
        super().__init__()
        self.a, self.middle, self.head = nn.Conv2d(3, 4, 1), middle, nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.middle(self.a(x)))


def test_a_linear_layer_over_the_pixels_fences_off_the_channels():
    groups, fixed = analyse(Split(nn.Linear(4, 4)), IMAGES)
    assert "a" not in groups
    assert fixed["a"] == "middle is a linear layer over a non-channel dim"


def test_excluded_layers_fix_the_channels_they_read_and_write():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)
    )
    graph = build_graph(model.eval(), IMAGES, exclude=["1"])
    assert [g.name for g in graph.groups] == ["2"]
    assert graph.fixed == {"0": "1 is excluded", "1": "1 is excluded", "3": "model output"}


class Fuse(nn.Module):
    """Sums a list of feature maps: a layer the tracer is told to keep whole."""

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return sum(maps)


def test_a_layer_called_on_a_list_of_tensors_has_an_unknown_input():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.fuse = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), Fuse()
            self.bn, self.head = nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.bn(self.fuse([self.a(x), self.b(x)])))

    graph = build_graph(Net().eval(), IMAGES, leaf_modules=["fuse"])
    assert graph.groups == []
    reason = "fuse (Fuse) has unknown input"
    assert graph.fixed == {"a": reason, "b": reason, "bn": reason, "head": "model output"}


class Twice(nn.Module):
    """One conv applied to two tensors, as ``inputs`` makes them."""

    def __init__(self, aligned: bool) -> None:
        super().__init__()
        self.aligned = aligned
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
        self.c, self.d = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 5, 1)
        self.shared = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = torch.cat([self.a(x), self.b(x)], 1)
        second = torch.cat([self.b(x), self.a(x)] if self.aligned else [self.c(x), self.d(x)], 1)
        return self.shared(first) + self.shared(second)


def test_a_layer_called_twice_couples_what_it_reads_each_time():
    groups, fixed = analyse(Twice(aligned=True), IMAGES)
    assert groups == {"a": ["a", "b", "shared"]}
    assert fixed == {"shared": "model output"}


def test_a_layer_called_on_differently_split_inputs_fences_them_off():
    groups, fixed = analyse(Twice(aligned=False), IMAGES)
    assert groups == {}
    reason = "shared is called on differently shaped inputs"
    assert {m: fixed[m] for m in "abcd"} == dict.fromkeys("abcd", reason)


def test_an_activation_of_a_parameter_fences_off_what_reads_it():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1, 4, 4, 4))
            self.bn, self.e = nn.BatchNorm2d(4), nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.e(x) * self.bn(torch.sigmoid(self.p)).sum()

    _, fixed = analyse(Net(), IMAGES)
    assert fixed["bn"] == "sigmoid of an unknown tensor"


def test_pruning_before_a_flatten_layer_keeps_what_the_kept_channels_computed():
    """With the removed channels zeroed instead, the original gives the same outputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 3 * 5, 2)).eval()
    x = torch.randn(2, 3, 3, 5)
    groups, fixed = analyse(model, x)
    assert groups == {"0": ["0", "2"]} and fixed == {"2": "model output"}
    importance = lambda group: torch.arange(group.size, 0, -1).float()  # noqa: E731
    small = prune_channels(model, x, ratio=0.5, importance=importance)  # the first half
    assert small[2].in_features == 2 * 3 * 5
    with torch.no_grad():
        model[0].weight[2:] = 0
        model[0].bias[2:] = 0
    torch.testing.assert_close(small(x), model(x))


class Pick(nn.Module):
    """Takes a range of channels, given first: a layer the tracer is told to keep whole."""

    def forward(self, channels: slice, x: torch.Tensor) -> torch.Tensor:
        return x[:, channels]


def test_a_layer_whose_first_argument_is_not_a_tensor_has_an_unknown_input():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.pick, self.head = nn.Conv2d(3, 4, 1), Pick(), nn.Conv2d(2, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.pick(slice(0, 2), self.a(x)))

    graph = build_graph(Net().eval(), IMAGES, leaf_modules=["pick"])
    assert graph.groups == []
    assert graph.fixed == {"a": "pick (Pick) has unknown input", "head": "model output"}


class Flat(nn.Module):
    """Conv ``a`` and a norm (4 channels of 4 x 4 pixels) -> ``flat`` -> linear ``fc``."""

    def __init__(self, flat, linear: bool = True) -> None:
        super().__init__()
        self.flat, self.linear = flat, linear
        self.a, self.bn, self.fc = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.flat(self.bn(self.a(x)))
        return self.fc(features) if self.linear else features.sum()


@pytest.mark.parametrize(
    "flat",
    [
        lambda y: torch.flatten(y, 1),
        lambda y: torch.flatten(y, start_dim=1),
        lambda y: y.flatten(1, -1),
        lambda y: y.view(y.size(0), -1),
        lambda y: y.reshape(y.size(0), -1),
        lambda y: y.view((y.size(0), -1)),
        lambda y: y.view(y.size(0), -1, 4, 4).flatten(1),
        lambda y: y.flatten(1, 2).flatten(1),
        lambda y: y.view(y.size(0), -1, 16).flatten(1),
    ],
    ids=[
        "flatten",
        "start_dim=",
        "method",
        "view",
        "reshape",
        "view-tuple",
        "same-shape",
        "in-two-steps",
        "view-3-D",
    ],
)
def test_flattening_the_channels_gives_each_one_its_block_of_features(flat):
    graph = build_graph(Flat(flat).eval(), IMAGES)
    (group,) = graph.groups
    assert sorted({m.module_name for m in group.members}) == ["a", "bn", "fc"]
    (fc,) = [m for m in group.members if m.module_name == "fc"]
    assert fc.role == "in" and fc.dim == 1
    assert fc.index.tolist() == [list(range(16 * c, 16 * c + 16)) for c in range(4)]
    assert graph.fixed == {"fc": "model output"}


@pytest.mark.parametrize(
    ("flat", "reason"),
    [
        (lambda y: torch.flatten(y), "flatten that interleaves the channels"),  # the batch
        (lambda y: y.view(-1), "a reshape that mixes the channels with other dimensions"),
        (lambda y: y.view(y.size(0), 64), "a reshape to a constant number of channels"),
        (lambda y: y.reshape(-1, 64), "a reshape to a constant number of channels"),
        (lambda y: torch.roll(y, 1, -1), "operation 'roll' is not understood"),
    ],
    ids=["all", "1-D", "literal", "literal-reshape", "roll"],
)
def test_other_reshapes_of_the_channels_fence_them_off(flat, reason):
    groups, fixed = analyse(Flat(flat, linear=False), IMAGES)
    assert groups == {}
    assert fixed["a"] == fixed["bn"] == reason


def test_group_members_list_the_weight_slices_of_each_channel():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)
            self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
            self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
            self.head = nn.Conv2d(16, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.dw(self.bn(self.a(x)))
            return self.head(torch.cat([y, self.b(x), self.c(x), y], 1))  # y twice

    model = Net().eval()
    graph = build_graph(model, IMAGES)
    members = {
        g.name: [(m.module_name, m.tensor, m.dim, m.role, m.index.tolist()) for m in g.members]
        for g in graph.groups
    }
    column = [[c] for c in range(4)]
    assert members == {
        "a": [
            ("a", "weight", 0, "out", column),
            ("bn", "weight", 0, "norm", column),
            ("dw", "weight", 0, "depthwise", column),
            ("head", "weight", 1, "in", [[c, 12 + c] for c in range(4)]),
        ],
        "b": [
            ("b", "weight", 0, "out", column),
            ("head", "weight", 1, "in", [[4 + c] for c in range(4)]),
        ],
        "c": [
            ("c", "weight", 0, "out", column),
            ("head", "weight", 1, "in", [[8 + c] for c in range(4)]),
        ],
    }
    for group in graph.groups:
        for m in group.members:
            assert m.module is model.get_submodule(m.module_name)
            assert m.weight is m.module.weight and m.index.dtype == torch.int64


def test_a_norm_without_a_scale_has_nothing_to_slice():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, affine=False), nn.Conv2d(4, 2, 1))
    groups, fixed = analyse(model, IMAGES)
    assert groups == {"0": ["0", "2"]}
    assert fixed == {"2": "model output"}
