"""Mutation testing of nasforge's training-free core, with the score per module.

    python scripts/mutation.py                  # fresh `mutmut run`, then the table
    python scripts/mutation.py --max-children 1 # fewer parallel workers (default: 2)
    python scripts/mutation.py --keep           # reuse mutmut's cache in ./mutants/
    python scripts/mutation.py --table          # only the table of the last run

The modules, the tests that run and mutmut's settings are in ``[tool.mutmut]`` of
pyproject.toml. Survivors judged equivalent (no test can tell them from the original) are
listed, each with its reason, in scripts/mutation_equivalent.txt; the score of a module is
(killed + timeout) / (mutants - equivalent). docs/testing.md explains how to read the survivors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "scripts" / "mutation_equivalent.txt"
UNKILLED = ("survived", "no tests")  # what an equivalent mutant can be
DONE = ("killed", "timeout", "not checked")  # not listed as survivors
OUTCOMES = ("killed", "survived", "timeout", "no tests")
COLUMNS = ("mutants", *OUTCOMES, "equivalent", "score")


def equivalent_mutants() -> dict[str, str]:
    """``{mutant name: reason}`` from the checked-in list (``name  # reason`` per line)."""
    listed = {}
    for line in EQUIVALENT.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            listed[name.strip()] = reason.strip()
    return listed


def run_mutmut(max_children: int, keep: bool) -> float:
    if not keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.monotonic()
    subprocess.run([str(mutmut), "run", "--max-children", str(max_children)], cwd=ROOT, check=True)
    return time.monotonic() - start


def table(fail_under: float) -> int:
    """Print the score per module from mutmut's results; 1 if a module scores too low."""
    os.chdir(ROOT)  # mutmut reads pyproject.toml and ./mutants/ relative to the cwd
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    listed = equivalent_mutants()
    rows, survivors, stale, known, unchecked = [], [], [], set(), 0
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        status = {name: status_by_exit_code[code] for name, code in data.exit_code_by_key.items()}
        count = Counter(status.values())
        known |= set(status)
        equivalent = sum(1 for n, s in status.items() if n in listed and s in UNKILLED)
        stale += [n for n, s in status.items() if n in listed and s not in UNKILLED]
        survivors += [n for n, s in status.items() if s not in DONE and n not in listed]
        unchecked += count["not checked"]
        tested = len(status) - equivalent
        # a mutant that makes the tests hang until mutmut stops them is detected too
        score = (count["killed"] + count["timeout"]) / tested if tested else 1.0
        counts = [count[outcome] for outcome in OUTCOMES] + [equivalent]
        rows.append((str(path.relative_to("src")).removesuffix(".py"), len(status), *counts, score))
    total = [sum(r[i] for r in rows) for i in range(1, 7)]
    tested = total[0] - total[5]
    rows.append(("total", *total, (total[1] + total[3]) / tested if tested else 1.0))

    width = max(len(r[0]) for r in rows)
    print(f"{'module':<{width}}" + "".join(f"{c:>11}" for c in COLUMNS))
    for module, *counts, score in rows:
        print(f"{module:<{width}}" + "".join(f"{n:>11}" for n in counts) + f"{score:>11.1%}")
    for name in sorted(stale):
        print(f"listed as equivalent but killed or not run (check the list): {name}")
    for name in sorted(set(listed) - known):
        print(f"listed as equivalent but no such mutant (remove it from the list): {name}")
    if unchecked:
        print(f"\n{unchecked} mutants not checked yet: the run did not finish")
    if survivors:
        print(f"\n{len(survivors)} mutants not killed and not listed as equivalent:")
        print("\n".join(f"  {name}" for name in sorted(survivors)))
        print("Read one with `mutmut show NAME`; see docs/testing.md.")
    low = [r[0] for r in rows[:-1] if r[-1] < fail_under / 100]
    if low:
        print(f"\nbelow {fail_under:g}%: {', '.join(low)}")
    return 1 if low else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutmut workers")
    parser.add_argument("--keep", action="store_true", help="reuse the results in ./mutants/")
    parser.add_argument("--table", action="store_true", help="only print the last results")
    parser.add_argument("--fail-under", type=float, default=85.0, help="minimum score per module")
    args = parser.parse_args()
    if not args.table:
        seconds = run_mutmut(args.max_children, args.keep)
        print(f"\nmutmut run took {seconds / 60:.1f} min ({args.max_children} workers)\n")
    return table(args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
