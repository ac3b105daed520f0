"""Every output path of ReproducePaper's task graph under the embedded default equals the one
recorded in tests/fixtures/layout_paths.txt (one training replicate): moving code between
modules leaves the cache and work paths, so their hashes, byte-identical; more replicates only
add the other replicates' outputs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "layout_paths.txt"

SMALL = """
[run]
replicates = {replicates}
[synthetic]
classes = 2
train_per_class = 2
test_per_class = 2
frames = 6
"""
"""The embedded default with a smaller synthetic dataset (generated to fingerprint its videos):
every other setting, so every stage's description, is the default's."""

GRAPH = textwrap.dedent("""
    import sys
    from pathlib import Path

    import luigi.task
    import tasks

    root = Path(sys.argv[1]).resolve()
    seen, todo, paths = set(), [tasks.ReproducePaper()], set()
    while todo:
        task = todo.pop()
        if task.task_id in seen:
            continue
        seen.add(task.task_id)
        for target in luigi.task.flatten(task.output()):
            paths.add(f"{task.task_family} {Path(target.path).resolve().relative_to(root)}")
        todo.extend(luigi.task.flatten(task.requires()))
    print("\\n".join(sorted(paths)))
""")


def graph_paths(folder: Path, replicates: int = 1) -> list[str]:
    """Each task of ReproducePaper's graph and its output path relative to ``folder``."""
    paths = "".join(f"{key} = {folder / key}\n" for key in ("data", "cache", "work", "reports"))
    (folder / "paths.cfg").write_text(f"[paths]\n{paths}{SMALL.format(replicates=replicates)}")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(folder / "paths.cfg"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", GRAPH, str(folder)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_the_default_graphs_output_paths_are_the_recorded_ones(tmp_path):
    assert graph_paths(tmp_path) == FIXTURE.read_text().splitlines()


def test_a_second_replicate_adds_its_own_outputs_only(tmp_path):
    recorded = FIXTURE.read_text().splitlines()
    paths = graph_paths(tmp_path, replicates=2)
    added = sorted(set(paths) - set(recorded))
    assert set(recorded) <= set(paths)
    assert added and all("-rep1" in path for path in added)
    families = {path.split(" ")[0] for path in added}
    assert families == {"TrainModel", "Evaluate", "Fuse", "Localize", "MotionSaliencyTubes",
                        "EvaluateLocalization"}
