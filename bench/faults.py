"""The fault table: every fault scenario of tests/test_faults.py run once (SIGKILLed workers,
SIGTERM and Ctrl-C mid flow, two commands writing one shard, damaged or edited videos, split
files and shards, splits no model can be trained or tested on, bad and memory-exhausting
settings and config files, edited or damaged model folders, a full disk, injected and, as
root, a real tmpfs), with whether the run survived it or failed cleanly, whether computed output was lost or
is wrong, and the message.

    .venv/bin/python bench/faults.py [--keep FOLDER]

Takes a few minutes on 2 cores (the tiny synthetic profile of tests/test_tasks.py).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_faults  # noqa: E402


def table(outcomes: list[test_faults.Outcome]) -> str:
    """Markdown table: fault | survived (or failed cleanly) | output lost | output wrong |
    message (first 80 characters)."""
    rows = ["| fault injected | run survived (or failed cleanly) | output lost | output wrong "
            "| message |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        detail = "; ".join(outcome.lost + outcome.wrong)
        rows.append(" | ".join([
            f"| {outcome.fault}", "yes" if outcome.survived else "NO",
            "YES" if outcome.lost else "no", "YES" if outcome.wrong else "no",
            outcome.message[:80].replace("|", "/") + (f" [{detail[:120]}]" if detail else "")
            + " |"]))
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.keep:
        outcomes = test_faults.all_outcomes(args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="faults-") as folder:
            outcomes = test_faults.all_outcomes(Path(folder))
    print(table(outcomes))
    print(f"\n{len(outcomes)} faults, {sum(o.ok for o in outcomes)} handled, "
          f"{time.perf_counter() - start:.0f} s")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
