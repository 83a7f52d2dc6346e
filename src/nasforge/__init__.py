"""nasforge: neural architecture search and model compression over PyTorch.

``import nasforge`` is cheap: the registry and errors load at once, everything that needs
PyTorch loads on first use of its name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_exports
from nasforge._version import __version__
from nasforge.errors import (
    CheckpointError,
    ConfigError,
    JournalError,
    MissingDependencyError,
    NasforgeError,
    PruningWarning,
    RegistryError,
    SlowdownWarning,
    StrategyStateError,
    TooManyFailuresError,
    TrainingDivergedError,
    UnknownArchError,
    UnsupportedModelError,
)
from nasforge.registry import KINDS, available, build, get, register, unregister

# Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "seed_everything": "nasforge._seed",
    "DataBundle": "nasforge.data.bundle",
    "load_dataset": "nasforge.data.bundle",
    "TensorLoader": "nasforge.data.loaders",
    "Callback": "nasforge.train.callbacks",
    "EarlyStopping": "nasforge.train.callbacks",
    "ModelCheckpoint": "nasforge.train.callbacks",
    "TrainState": "nasforge.train.callbacks",
    "load_checkpoint": "nasforge.train.callbacks",
    "History": "nasforge.train.engine",
    "TrainConfig": "nasforge.train.config",
    "Trainer": "nasforge.trainer",
    "LatencyOptions": "nasforge.measure",
    "compare_latency": "nasforge.measure",
    "count_macs": "nasforge.measure",
    "count_params": "nasforge.measure",
    "measure_latency": "nasforge.measure",
    "size_on_disk": "nasforge.measure",
    "Ensemble": "nasforge.ensemble",
    "Pipeline": "nasforge.compress.pipeline",
    "CompressionReport": "nasforge.compress.report",
    "ChannelPruner": "nasforge.compress.prune.structured",
    "prune_channels": "nasforge.compress.prune.structured",
    "MagnitudePruner": "nasforge.compress.prune.unstructured",
    "export_onnx": "nasforge.export",
    "export_torchscript": "nasforge.export",
    "load_model": "nasforge.export",
    "save_model": "nasforge.export",
    "DistillationCallback": "nasforge.compress.distill",
    "Distiller": "nasforge.compress.distill",
    "TeacherEnsemble": "nasforge.compress.distill",
    "Int8Quantizer": "nasforge.compress.quantize.ptq",
    "QATQuantizer": "nasforge.compress.quantize.qat",
    "Arch": "nasforge.space.base",
    "Space": "nasforge.space.base",
    "Choice": "nasforge.space.params",
    "Fixed": "nasforge.space.params",
    "FloatRange": "nasforge.space.params",
    "IntRange": "nasforge.space.params",
    "Strategy": "nasforge.strategy.base",
    "Evaluator": "nasforge.nas.evaluator",
    "TabularBenchmark": "nasforge.evaluators.tabular",
    "search": "nasforge.nas.loop",
    "Constraint": "nasforge.nas.objectives",
    "hypervolume": "nasforge.pareto",
    "pareto_front": "nasforge.pareto",
    "TrainEvaluator": "nasforge.evaluators.training",
    "retrain": "nasforge.evaluators.training",
    "SupernetEvaluator": "nasforge.evaluators.supernet",
    "CompressionEvaluator": "nasforge.evaluators.compression",
    "CompressedSpace": "nasforge.space.compression",
    "TransferSpace": "nasforge.space.transfer",
    "TransferEvaluator": "nasforge.evaluators.transfer",
    "ZeroCostProxy": "nasforge.evaluators.proxies",
    "Synflow": "nasforge.evaluators.proxies",
    "NASWOT": "nasforge.evaluators.proxies",
    "SNIP": "nasforge.evaluators.proxies",
    "ASHA": "nasforge.nas.schedulers",
    "Hyperband": "nasforge.nas.schedulers",
    "Scheduler": "nasforge.nas.schedulers",
    "SuccessiveHalving": "nasforge.nas.schedulers",
    "SearchResult": "nasforge.nas.result",
    "CallbackWarning": "nasforge.nas.callbacks",
    "SearchCallback": "nasforge.nas.callbacks",
    "SearchInfo": "nasforge.nas.callbacks",
    "MLflowTracker": "nasforge.nas.trackers",
    "TensorBoardTracker": "nasforge.nas.trackers",
    "Tracker": "nasforge.nas.trackers",
    "Trial": "nasforge.nas.result",
    "TrialStatus": "nasforge.nas.result",
}

__all__ = [
    "ASHA",
    "KINDS",
    "NASWOT",
    "SNIP",
    "Arch",
    "Callback",
    "CallbackWarning",
    "ChannelPruner",
    "CheckpointError",
    "Choice",
    "CompressedSpace",
    "CompressionEvaluator",
    "CompressionReport",
    "ConfigError",
    "Constraint",
    "DataBundle",
    "DistillationCallback",
    "Distiller",
    "EarlyStopping",
    "Ensemble",
    "Evaluator",
    "Fixed",
    "FloatRange",
    "History",
    "Hyperband",
    "Int8Quantizer",
    "IntRange",
    "JournalError",
    "LatencyOptions",
    "MLflowTracker",
    "MagnitudePruner",
    "MissingDependencyError",
    "ModelCheckpoint",
    "NasforgeError",
    "Pipeline",
    "PruningWarning",
    "QATQuantizer",
    "RegistryError",
    "Scheduler",
    "SearchCallback",
    "SearchInfo",
    "SearchResult",
    "SlowdownWarning",
    "Space",
    "Strategy",
    "StrategyStateError",
    "SuccessiveHalving",
    "SupernetEvaluator",
    "Synflow",
    "TabularBenchmark",
    "TeacherEnsemble",
    "TensorBoardTracker",
    "TensorLoader",
    "TooManyFailuresError",
    "Tracker",
    "TrainConfig",
    "TrainEvaluator",
    "TrainState",
    "Trainer",
    "TrainingDivergedError",
    "TransferEvaluator",
    "TransferSpace",
    "Trial",
    "TrialStatus",
    "UnknownArchError",
    "UnsupportedModelError",
    "ZeroCostProxy",
    "__version__",
    "available",
    "build",
    "compare_latency",
    "count_macs",
    "count_params",
    "export_onnx",
    "export_torchscript",
    "get",
    "hypervolume",
    "load_checkpoint",
    "load_dataset",
    "load_model",
    "measure_latency",
    "pareto_front",
    "prune_channels",
    "register",
    "retrain",
    "save_model",
    "search",
    "seed_everything",
    "size_on_disk",
    "unregister",
]

if TYPE_CHECKING:
    from nasforge._seed import seed_everything
    from nasforge.compress.distill import DistillationCallback, Distiller, TeacherEnsemble
    from nasforge.compress.pipeline import Pipeline
    from nasforge.compress.prune.structured import ChannelPruner, prune_channels
    from nasforge.compress.prune.unstructured import MagnitudePruner
    from nasforge.compress.quantize.ptq import Int8Quantizer
    from nasforge.compress.quantize.qat import QATQuantizer
    from nasforge.compress.report import CompressionReport
    from nasforge.data.bundle import DataBundle, load_dataset
    from nasforge.data.loaders import TensorLoader
    from nasforge.ensemble import Ensemble
    from nasforge.evaluators.compression import CompressionEvaluator
    from nasforge.evaluators.proxies import NASWOT, SNIP, Synflow, ZeroCostProxy
    from nasforge.evaluators.supernet import SupernetEvaluator
    from nasforge.evaluators.tabular import TabularBenchmark
    from nasforge.evaluators.training import TrainEvaluator, retrain
    from nasforge.evaluators.transfer import TransferEvaluator
    from nasforge.export import export_onnx, export_torchscript, load_model, save_model
    from nasforge.measure import (
        LatencyOptions,
        compare_latency,
        count_macs,
        count_params,
        measure_latency,
        size_on_disk,
    )
    from nasforge.nas.callbacks import CallbackWarning, SearchCallback, SearchInfo
    from nasforge.nas.evaluator import Evaluator
    from nasforge.nas.loop import search
    from nasforge.nas.objectives import Constraint
    from nasforge.nas.result import SearchResult, Trial, TrialStatus
    from nasforge.nas.schedulers import ASHA, Hyperband, Scheduler, SuccessiveHalving
    from nasforge.nas.trackers import MLflowTracker, TensorBoardTracker, Tracker
    from nasforge.pareto import hypervolume, pareto_front
    from nasforge.space.base import Arch, Space
    from nasforge.space.compression import CompressedSpace
    from nasforge.space.params import Choice, Fixed, FloatRange, IntRange
    from nasforge.space.transfer import TransferSpace
    from nasforge.strategy.base import Strategy
    from nasforge.train.callbacks import (
        Callback,
        EarlyStopping,
        ModelCheckpoint,
        TrainState,
        load_checkpoint,
    )
    from nasforge.train.config import TrainConfig
    from nasforge.train.engine import History
    from nasforge.trainer import Trainer

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
