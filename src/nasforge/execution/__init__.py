"""Executors: where trials run (this process, worker processes, or a Ray cluster).

Every built-in is importable as a class as well as by name (``nf.build("executor",
"process", workers=2)``); the Ray executor imports Ray only when it is made.
"""

from nasforge.execution.base import Executor, Failure, TaskResult
from nasforge.execution.process import ProcessExecutor
from nasforge.execution.ray import RayExecutor
from nasforge.execution.serial import SerialExecutor

__all__ = [
    "Executor",
    "Failure",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "TaskResult",
]
