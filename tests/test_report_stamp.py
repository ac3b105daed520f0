"""ReproducePaper's report is named by the profile alone, so it carries the identity of the
outputs it was made from: a report of other settings in that folder is made again."""

import os
import subprocess
import sys
import textwrap

import pytest

from pipeline.report import assembly
from test_layout_paths import REPO, SMALL

CHECK = textwrap.dedent("""
    from pathlib import Path

    import tasks
    from pipeline.report import assembly

    task = tasks.ReproducePaper()
    report = Path(task.output().path)
    report.parent.mkdir(parents=True, exist_ok=True)
    identity = task.inputs_identity()
    print(identity, task.complete())
    report.write_text("# Report\\n")
    print(task.complete())
    report.write_text(assembly.stamped("# Report\\n", identity))
    print(task.complete())
""")


def report_states(folder, extra=""):
    """(identity, complete with the report already there, with an unstamped one, with one
    stamped with the identity)."""
    paths = "".join(f"{key} = {folder / key}\n" for key in ("data", "cache", "work", "reports"))
    (folder / "paths.cfg").write_text(f"[paths]\n{paths}{SMALL.format(replicates=1)}{extra}")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "paths.cfg"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, *rest = done.stdout.split()
    return first, *(word == "True" for word in rest)


def test_a_report_counts_as_done_only_when_stamped_with_its_graphs_identity(tmp_path):
    identity, missing, unstamped, stamped = report_states(tmp_path)
    assert (missing, unstamped, stamped) == (False, False, True)
    other, stale, unstamped, stamped = report_states(tmp_path, "[flow]\nepsilon = 0.05\n")
    assert other != identity
    assert (stale, unstamped, stamped) == (False, False, True)


def test_identity_depends_on_the_hashed_names_not_on_the_roots():
    a = ["/a/cache/features-rgb-1111111111/shard-000.h5", "/a/work/evaluation/lstm-2222222222"]
    b = ["/b/work/evaluation/lstm-2222222222", "/b/cache/features-rgb-1111111111/shard-000.h5"]
    assert assembly.inputs_identity(a) == assembly.inputs_identity(b)
    changed = [a[0], "/a/work/evaluation/lstm-3333333333"]
    assert assembly.inputs_identity(changed) != assembly.inputs_identity(a)


@pytest.mark.parametrize("text", ["# Report\n", "# Report\n\n\n", "# Report"])
def test_stamp_is_read_back_from_the_last_line(text):
    made = assembly.stamped(text, "0123456789abcdef")
    assert made.startswith("# Report\n") and made.endswith("-->\n")
    assert assembly.stamp(made) == "0123456789abcdef"
    assert assembly.stamp(text) is None
    assert assembly.stamp(made.replace("0123456789abcdef", "0123")) is None
