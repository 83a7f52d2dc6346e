"""Progress bars: on when standard error is a terminal, unless told otherwise."""

from __future__ import annotations

import sys
from typing import Any

from nasforge.errors import ConfigError


def progress_enabled(progress: bool | None) -> bool:
    """``progress`` itself when it is True or False; for None, whether standard error is a
    terminal (so scripts and CI logs do not fill with bar redraws)."""
    if progress is None:
        stream = sys.stderr
        return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
    if not isinstance(progress, bool):
        raise ConfigError.invalid("progress", progress, "True, False or None (automatic)")
    return progress


def progress_bar(progress: bool | None, **options: Any) -> Any:
    """A ``tqdm`` bar (disabled unless :func:`progress_enabled`); options go to tqdm."""
    from tqdm.auto import tqdm

    return tqdm(disable=not progress_enabled(progress), leave=False, dynamic_ncols=True, **options)
