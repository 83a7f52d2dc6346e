"""Executors: where trials run (this process, worker processes, or a Ray cluster)."""

from nasforge.execution.base import Executor, Failure, TaskResult
from nasforge.execution.process import ProcessExecutor
from nasforge.execution.serial import SerialExecutor

__all__ = ["Executor", "Failure", "ProcessExecutor", "SerialExecutor", "TaskResult"]
