"""Every script in examples/ runs in quick mode, and its own asserts hold.

With ``NASFORGE_QUICK=1`` an example trains for fewer epochs, trials or samples; the key
claim of its docstring is checked by ``assert`` statements in the script itself. A new
example is picked up here without editing this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
NB201 = REPO.parent / "shared" / "data" / "nb201" / "nb201_cifar10.csv"

# Command-line arguments of the examples that read data from outside the repository.
ARGS = {"nb201_search.py": [str(NB201)]}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs_in_quick_mode(script: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NASFORGE_QUICK": "1",
        # This checkout's package, whatever nasforge the environment has installed.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.getenv("PYTHONPATH")])),
        "TMPDIR": str(tmp_path),  # what an example saves goes here, never into the repo
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",  # shared CI cores: one intra-op thread unless it asks for more
    }
    proc = subprocess.run(
        [sys.executable, str(script), *ARGS.get(script.name, [])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}\n"
        f"--- stdout (end) ---\n{proc.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{proc.stderr[-6000:]}"
    )
