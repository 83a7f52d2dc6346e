"""Old import paths keep working, each with a DeprecationWarning naming the new one.

The table mirrors CHANGELOG.md's "Moved" section.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

MOVED = [
    ("nasforge.nas.pareto", "pareto_front", "nasforge.pareto"),
    ("nasforge.nas.pareto", "hypervolume", "nasforge.pareto"),
    ("nasforge.compress.export", "save_model", "nasforge.export"),
    ("nasforge.compress.export", "load_model", "nasforge.export"),
    ("nasforge.nas.evaluator", "TabularBenchmark", "nasforge.evaluators.tabular"),
    ("nasforge.nas.evaluator", "UnknownArchError", "nasforge.errors"),
    ("nasforge.nas", "TabularBenchmark", "nasforge.evaluators.tabular"),
    ("nasforge.nas.train_evaluator", "TrainEvaluator", "nasforge.evaluators.training"),
    ("nasforge.nas.train_evaluator", "LatencyOptions", "nasforge.measure"),
    ("nasforge.nas.config", "load_search_config", "nasforge.cli.search"),
    ("nasforge.nas.config", "run_search", "nasforge.cli.search"),
    ("nasforge.nas.config", "space_from_config", "nasforge.cli.search"),
    ("nasforge.compress.config", "load_config", "nasforge.cli.compress"),
    ("nasforge.compress.config", "run_compress", "nasforge.cli.compress"),
    ("nasforge.train", "Trainer", "nasforge.trainer"),
    ("nasforge.train.trainer", "Trainer", "nasforge.trainer"),
    ("nasforge.train.trainer", "History", "nasforge.train.engine"),
    ("nasforge.train.trainer", "resolve_device", "nasforge.train.config"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_old_path_warns_and_gives_the_same_object(old, name, new):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_from_import_of_an_old_path_works():
    with pytest.warns(DeprecationWarning):
        from nasforge.nas.train_evaluator import TrainEvaluator
    import nasforge as nf

    assert TrainEvaluator is nf.TrainEvaluator


def test_unknown_names_are_still_attribute_errors():
    module = importlib.import_module("nasforge.nas.config")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


def test_the_new_paths_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        import nasforge as nf
        from nasforge.evaluators import TabularBenchmark, TrainEvaluator  # noqa: F401
        from nasforge.strategy import RegularizedEvolution  # noqa: F401

        nf.Trainer, nf.search, nf.TrainConfig, nf.pareto_front  # noqa: B018


def test_old_private_strategy_hooks_still_work_with_a_warning():
    import nasforge as nf
    from nasforge.strategy import Strategy

    with pytest.warns(DeprecationWarning, match="_propose is deprecated: implement propose"):

        class Old(Strategy):
            name = "old"

            def _propose(self):
                return self.random_unseen()

    strategy = Old(nf.build("space", "nb201"), seed=0)
    arch = strategy.ask()
    strategy.tell(arch, 1.0)
    assert strategy.history == [(arch, 1.0)]
