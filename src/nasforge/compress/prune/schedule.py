"""Pruning schedules: how much to prune at each step of an iterative prune/fine-tune loop."""

from __future__ import annotations

from nasforge.errors import ConfigError
from nasforge.validation import check_choice, check_int, check_number

__all__ = ["SCHEDULES", "schedule_amounts"]

SCHEDULES = ("one_shot", "agp")


def schedule_amounts(
    schedule: str, final: float, steps: int, *, initial: float = 0.0
) -> list[float]:
    """The cumulative pruning amount (ratio or sparsity) after each of ``steps`` steps.

    ``"one_shot"`` prunes everything in one step. ``"agp"`` is the automated gradual pruning
    schedule of Zhu & Gupta (2017, "To prune, or not to prune"):
    ``s_t = s_f + (s_i - s_f) * (1 - t / n)^3`` for ``t = 1..n``, which prunes fast while
    many redundant weights remain and slowly near the end::

        schedule_amounts("agp", 0.5, 4)   # [0.2891, 0.4375, 0.4922, 0.5]
    """
    schedule = check_choice(schedule, "schedule", SCHEDULES)
    check_int(steps, "steps", low=1)
    check_number(final, "final", low=0, high=1)
    if schedule == "one_shot":
        if steps != 1:
            raise ConfigError.invalid(
                "steps", steps, "1 for the one_shot schedule", "use schedule='agp'"
            )
        return [final]
    return [final + (initial - final) * (1 - t / steps) ** 3 for t in range(1, steps + 1)]
