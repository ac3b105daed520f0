"""bench/bench_trainings.py's scratch config: the current config (luigi.cfg, then
LUIGI_CONFIG_PATH) with models in a scratch folder, so the bench trains on the user's cache."""

import configparser
import sys

from test_tasks import REPO

sys.path.insert(0, str(REPO / "bench"))
from bench_trainings import scratch_config  # noqa: E402


def test_scratch_config_keeps_the_users_cache_and_sets_work_threads_and_epochs(tmp_path,
                                                                              monkeypatch):
    mine = tmp_path / "mine.cfg"
    mine.write_text("[run]\nseed = 5\n[paths]\ncache = /shared/cache\n[synthetic]\nseed = 5\n")
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(mine))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    written = configparser.ConfigParser(interpolation=None)
    written.read(scratch_config(scratch, threads=2, epochs=3))
    assert written.get("paths", "cache") == "/shared/cache"
    assert written.get("paths", "data") == str(REPO / "data")  # luigi.cfg's, made absolute
    assert written.get("paths", "work") == str(scratch / "work")
    assert (written.get("run", "threads"), written.get("train", "epochs")) == ("2", "3")
    assert written.get("run", "seed") == "5" and written.get("synthetic", "seed") == "5"
    default = configparser.ConfigParser(interpolation=None)
    default.read(REPO / "luigi.cfg")
    assert written.get("train", "snippet") == default.get("train", "snippet")  # the rest kept
