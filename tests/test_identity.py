"""Cache identity: video fingerprints, stable shards, and paths that follow content only."""

import json
import os
import shutil

import luigi.worker
import numpy as np
import pandas as pd
import pytest

from pipeline import sharding
from pipeline.datasets import synthetic
from pipeline.identity.fingerprint import VERSION, FingerprintCache, content_hash, fingerprint


def test_fingerprint_follows_content_not_path(tmp_path):
    a = tmp_path / "a.avi"
    a.write_bytes(bytes(range(256)) * 1000)
    copy = tmp_path / "elsewhere" / "a.avi"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    assert fingerprint(a) == fingerprint(copy)
    data = bytearray(copy.read_bytes())
    data[10] ^= 1
    copy.write_bytes(bytes(data))
    assert fingerprint(a) != fingerprint(copy)


def test_fingerprint_changes_with_a_same_size_edit_in_the_middle(tmp_path):
    """A re-encoded frame in the middle of a file keeps its size and both ends (1 MiB of
    each here, more than any header or index) but not its fingerprint."""
    video = tmp_path / "v.avi"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 3 << 20, np.uint8).tobytes())
    video.write_bytes(bytes(data))
    before = fingerprint(video)
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))
    assert fingerprint(video) != before


def test_fingerprint_store_of_another_version_is_computed_anew(tmp_path):
    """A store written by the end-hashing version (a plain path -> [size, mtime, fingerprint]
    table) is not trusted, even for files whose size and time did not change."""
    video = tmp_path / "v.avi"
    video.write_bytes(b"x" * 100)
    stat = video.stat()
    store = tmp_path / "fingerprints.json"
    store.write_text(json.dumps({str(video.resolve()): [stat.st_size, stat.st_mtime_ns,
                                                        "0123456789abcdef"]}))
    cache = FingerprintCache(store)
    assert cache.get(video) == fingerprint(video) != "0123456789abcdef"
    cache.save()
    assert json.loads(store.read_text())["algorithm_version"] == VERSION


def test_fingerprint_cache_does_not_rehash_an_unchanged_file(tmp_path, monkeypatch):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x" * 100)
    store = tmp_path / "fingerprints.json"
    first = FingerprintCache(store)
    known = first.get(video)
    first.save()
    monkeypatch.setattr("pipeline.identity.fingerprint.fingerprint",
                        lambda path: pytest.fail(f"{path} hashed again"))
    assert FingerprintCache(store).get(video) == known


def test_fingerprint_cache_rereads_a_file_that_changed(tmp_path):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x" * 100)
    store = tmp_path / "work" / "fingerprints.json"
    cache = FingerprintCache(store)
    first = cache.get(video)
    cache.save()
    video.write_bytes(b"y" * 100)
    os.utime(video, ns=(1, 1))
    again = FingerprintCache(store)
    assert again.get(video) != first
    assert again.get(video) == fingerprint(video)
    with pytest.raises(FileNotFoundError, match="missing.avi"):
        again.get(tmp_path / "missing.avi")


def test_content_hash_ignores_row_order_but_not_values():
    table = pd.DataFrame({"video_id": ["a", "b"], "fingerprint": ["1", "2"]})
    columns = ("video_id", "fingerprint")
    assert content_hash(table, columns) == content_hash(table[::-1], columns)
    changed = table.assign(fingerprint=["1", "3"])
    assert content_hash(table, columns) != content_hash(changed, columns)


def test_a_video_keeps_its_shard_whatever_else_is_added():
    videos = pd.DataFrame({"video_id": [f"v_{i:03d}" for i in range(40)]})
    before = {s: set(sharding.members(videos, s, 4)["video_id"]) for s in range(4)}
    assert set().union(*before.values()) == set(videos["video_id"])
    assert sum(len(m) for m in before.values()) == 40
    grown = pd.concat([videos, pd.DataFrame({"video_id": ["v_new"]})])
    after = {s: set(sharding.members(grown, s, 4)["video_id"]) for s in range(4)}
    changed = [s for s in range(4) if after[s] != before[s]]
    assert len(changed) == 1 and after[changed[0]] - before[changed[0]] == {"v_new"}
    with pytest.raises(ValueError, match="shard must be in"):
        sharding.members(videos, 4, 4)


SPEC = synthetic.SyntheticSpec(classes=2, train_per_class=2, test_per_class=1, frames=4,
                               width=32, height=24)


@pytest.fixture
def two_copies(tmp_path, monkeypatch):
    """The same UCF101-format dataset at two paths, the pipeline pointed at the first."""
    import tasks
    from pipeline import config
    first = synthetic.generate(tmp_path / "one" / "data", SPEC)
    second = tmp_path / "two" / "data"
    shutil.copytree(first, second)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config.ucf101, "videos", str(first / synthetic.VIDEOS_DIR))
    monkeypatch.setattr(config.ucf101, "splits", str(first / synthetic.SPLITS_DIR))
    # luigi.build runs the tasks in this process, whose TensorFlow may have started: a forked
    # task process would inherit its runtime half-copied
    monkeypatch.setattr(luigi.worker.worker, "force_multiprocessing", False)
    monkeypatch.setattr(config.run, "devices", "none")
    return tasks, config, first, second


def test_paths_follow_the_content_not_the_mount_point(two_copies, monkeypatch):
    tasks, config, first, second = two_copies
    flow = [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path for s in range(4)]
    manifest = tasks.Manifest(dataset="ucf101").output().path
    monkeypatch.setattr(config.ucf101, "videos", str(second / synthetic.VIDEOS_DIR))
    monkeypatch.setattr(config.ucf101, "splits", str(second / synthetic.SPLITS_DIR))
    assert [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path
            for s in range(4)] == flow
    assert tasks.Manifest(dataset="ucf101").output().path == manifest


def test_a_changed_video_moves_only_its_shard_and_what_depends_on_it(two_copies):
    from pipeline.identity import descriptions
    tasks, config, first, _ = two_copies
    flow = [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path for s in range(4)]
    model = tasks.TrainModel(dataset="ucf101", arch="lstm").output().path
    video = first / synthetic.VIDEOS_DIR / synthetic.CLASS_NAMES[0] / (
        synthetic.video_stem(synthetic.CLASS_NAMES[0], 0, 0) + ".avi")
    data = bytearray(video.read_bytes())
    data[-5] ^= 0xFF
    video.write_bytes(bytes(data))
    descriptions._LISTINGS.clear()  # a new command: the listing is read once per command
    after = [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path for s in range(4)]
    assert sum(a != b for a, b in zip(flow, after)) == 1
    assert tasks.TrainModel(dataset="ucf101", arch="lstm").output().path != model


def test_an_edited_split_moves_the_manifest_and_the_models(two_copies):
    tasks, config, first, _ = two_copies
    manifest = tasks.Manifest(dataset="ucf101").output().path
    model = tasks.TrainModel(dataset="ucf101", arch="lstm").output().path
    flow = [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path for s in range(4)]
    trainlist = first / synthetic.SPLITS_DIR / "trainlist01.txt"
    lines = trainlist.read_text().splitlines()
    trainlist.write_text("\n".join(lines[1:]) + "\n")
    assert tasks.Manifest(dataset="ucf101").output().path != manifest
    assert tasks.TrainModel(dataset="ucf101", arch="lstm").output().path != model
    after = [tasks.ComputeFlow(dataset="ucf101", shard=s).output().path for s in range(4)]
    assert sum(a != b for a, b in zip(flow, after)) == 1  # only the shard that held it


def test_more_shards_reuse_every_video_already_computed(two_copies, monkeypatch):
    """Flow computed in 2 shards, then [run] shards = 3: the new shards copy every video from
    the old ones (TV-L1 never runs) and hold the same flow."""
    import luigi
    from pipeline import cache
    from pipeline.flow import tvl1
    from pipeline.identity.descriptions import flow_description
    tasks, config, _, _ = two_copies
    monkeypatch.setattr(config.flow, "processes", 1)
    monkeypatch.setattr(config.run, "shards", 2)
    assert luigi.build([tasks.ComputeFlow(dataset="ucf101", shard=s) for s in range(2)],
                       local_scheduler=True, no_lock=True)
    before = {}
    for s in range(2):
        with cache.Shard(tasks.ComputeFlow(dataset="ucf101", shard=s).output().path) as shard:
            before.update({video: shard.read(video, "flow") for video in shard.videos})
    computed = []
    original = tvl1.FlowPool.map_videos

    def recording(pool, paths, params):
        computed.extend(paths)
        return original(pool, paths, params)

    monkeypatch.setattr(tvl1.FlowPool, "map_videos", recording)
    monkeypatch.setattr(config.run, "shards", 3)
    assert luigi.build([tasks.ComputeFlow(dataset="ucf101", shard=s) for s in range(3)],
                       local_scheduler=True, no_lock=True)
    assert computed == []
    after = {}
    for s in range(3):
        path = tasks.ComputeFlow(dataset="ucf101", shard=s).output().path
        assert "-of-003-" in path
        with cache.Shard(path, flow_description("ucf101", s)) as shard:
            after.update({video: shard.read(video, "flow") for video in shard.videos})
    assert sorted(after) == sorted(before) and len(before) == 6
    for video, array in before.items():
        np.testing.assert_array_equal(after[video], array)


def test_a_flow_backend_is_its_own_cache_and_computes_the_same_flow(two_copies, monkeypatch):
    """[flow] backend = tensorflow: other flow shards (and so features and models), computed by
    the batched runner, within one quantization level of OpenCV's almost everywhere."""
    import luigi
    from pipeline import cache
    from pipeline.identity.descriptions import flow_description
    tasks, config, _, _ = two_copies
    monkeypatch.setattr(config.flow, "processes", 1)
    monkeypatch.setattr(config.flow, "batch_pairs", 8)
    monkeypatch.setattr(config.flow, "warps", 2)
    monkeypatch.setattr(config.video, "frame_size", "32x24")
    monkeypatch.setattr(config.run, "shards", 2)
    flows = {}
    for backend in ("opencv", "tensorflow"):
        monkeypatch.setattr(config.flow, "backend", backend)
        shards = [tasks.ComputeFlow(dataset="ucf101", shard=s) for s in range(2)]
        assert luigi.build(shards, local_scheduler=True, no_lock=True)
        flows[backend] = {"paths": [shard.output().path for shard in shards],
                          "model": tasks.TrainModel(dataset="ucf101", arch="lstm",
                                                    stream="flow").output().path}
        for s, shard in enumerate(shards):
            with cache.Shard(shard.output().path, flow_description("ucf101", s)) as f:
                assert f.description["params"]["tvl1"]["backend"] == backend
                flows[backend].update({video: f.read(video, "flow") for video in f.videos})
    opencv, tensorflow = flows["opencv"], flows["tensorflow"]
    assert not set(opencv["paths"]) & set(tensorflow["paths"])
    assert opencv["model"] != tensorflow["model"]
    videos = [key for key in opencv if key not in ("paths", "model")]
    assert len(videos) == 6 and sorted(videos) == sorted(
        key for key in tensorflow if key not in ("paths", "model"))
    levels = np.concatenate([np.abs(opencv[v].astype(int) - tensorflow[v]).ravel()
                             for v in videos])
    assert (levels > 1).mean() <= 0.01
