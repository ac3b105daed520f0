"""Training on cached feature shards: snippets, resumption from checkpoints, segment scoring."""

import math
import os
import types

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from models.registry import ModelSizes, build_model
from pipeline import bounds, cache, sampling, scoring
from pipeline.training.loader import (MemoryLoader, SnippetLoader, as_dataset, reader_count,
                                      training_batches)
from pipeline.training.loop import (Checkpoints, checksum_except_classifier, compile_model,
                                    evaluate_model, held_out_accuracy, segment_scores, train,
                                    train_model,
                                    transfer_except_classifier, whole_video, write_history)
from pipeline.training.source import (FeatureSource, ModelInputs, PreloadedSource,
                                      feature_statistics)

SIZES = ModelSizes(hidden=4, attention=6, kernel=3, attention_kernel=1, dense=8,
                   dropout=0.5)


def write_features(path, stream, videos, n=3, d=5, seed=0):
    """A feature shard in the real format with (label-dependent) pool5 and fc7 per video."""
    rng = np.random.default_rng(seed)
    description = cache.describe("features", {"stream": stream}, {})
    with cache.ShardWriter(path, description) as writer:
        for video, (frames, label) in videos.items():
            pool5 = rng.normal(size=(frames, n, n, d)).astype(np.float16)
            pool5[..., label] += 2
            writer.add(video, {"pool5": pool5, "fc7": pool5.reshape(frames, -1)},
                       {"label_index": label})
        writer.skip("v_broken", "cannot open")
    return description


@pytest.fixture
def shards(tmp_path):
    videos = {f"v{i}": (12 + i, i % 2) for i in range(6)}
    rgb = write_features(tmp_path / "rgb.h5", "rgb", videos, seed=1)
    flow_videos = {v: (frames - 1, label) for v, (frames, label) in videos.items()}
    flow = write_features(tmp_path / "flow.h5", "flow", flow_videos, seed=2)
    return ({"rgb": {str(tmp_path / "rgb.h5"): rgb}, "flow": {str(tmp_path / "flow.h5"): flow}},
            {"rgb": rgb, "flow": flow}, videos)


def test_model_inputs_follow_the_paper():
    assert ModelInputs.of("lstm", "rgb", "appearance").layer == "fc7"
    assert ModelInputs.of("convalstm", "flow", "appearance") == \
        ModelInputs("flow", "pool5", False)
    assert ModelInputs.of("videolstm", "rgb", "appearance").motion
    assert ModelInputs.of("alstm", "rgb", "motion").motion
    assert ModelInputs.of("alstm", "rgb", "motion").motion_layer == "pool5"
    assert ModelInputs.of("alstm", "rgb", "motion", "fc7").motion_layer == "fc7"
    assert ModelInputs.of("videolstm", "rgb", "motion", "fc7").motion_layer == "pool5"


def test_source_aligns_rgb_with_flow_and_knows_skipped_videos(shards):
    paths, descriptions, videos = shards
    inputs = ModelInputs.of("videolstm", "rgb", "motion")
    with FeatureSource(paths, inputs) as source:
        assert source.videos_cached() == set(videos)
        assert source.length("v2") == 13
        frames = source.frames("v2", np.array([0, 5, 12]))
        assert frames["features"].shape == (3, 3, 3, 5) and frames["motion"].shape == (3, 3, 3, 5)
        assert frames["features"].dtype == np.float32
        assert source.shapes() == {"features": (3, 3, 5), "motion": (3, 3, 5)}


def test_source_refuses_shards_of_other_settings(shards):
    paths, descriptions, _ = shards
    other = dict(paths, rgb={path: cache.describe("features", {"stream": "flow"}, {})
                             for path in paths["rgb"]})
    with pytest.raises(cache.CacheMismatchError, match="rgb.h5"):
        FeatureSource(other, ModelInputs("rgb", "pool5", False))


def test_training_batches_cover_each_video_once_per_epoch(shards):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "fc7", False)) as source:
        batches = list(training_batches(source, ids, labels, 4, 10,
                                        np.random.default_rng(0)))
    assert [b[0]["features"].shape for b in batches] == [(4, 10, 45), (2, 10, 45)]
    targets = np.concatenate([b[1]["scores"] for b in batches])
    assert targets.shape == (6, 10) and sorted(targets[:, 0]) == sorted(labels)
    assert np.all(targets == targets[:, :1])


def make_model():
    keras.utils.set_random_seed(0)
    return build_model("convalstm", 2, (3, 3, 5), SIZES)


def train_for(source, ids, labels, epochs, folder, model=None, loader=None):
    model = model or make_model()
    compile_model(model, 0.01, 0.9)

    def epoch_data(epoch):
        if loader is not None:
            return loader.dataset(ids, labels, [0, epoch])

        def batches():
            return training_batches(source, ids, labels, 3, 8,
                                    np.random.default_rng([0, epoch]))
        return as_dataset(batches, source.shapes(), 8, math.ceil(len(ids) / 3))
    return train(model, epoch_data, epochs, Checkpoints(folder), seed=0)


def test_resumed_training_equals_uninterrupted_training(shards, tmp_path):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    inputs = ModelInputs("rgb", "pool5", False)
    with FeatureSource(paths, inputs) as source:
        whole, history = train_for(source, ids, labels, 3, tmp_path / "whole")
        train_for(source, ids, labels, 2, tmp_path / "killed")
        resumed, resumed_history = train_for(source, ids, labels, 3, tmp_path / "killed")
    assert [row["epoch"] for row in resumed_history] == [0, 1, 2]
    assert len(history) == 3 and history[-1]["loss"] > 0
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_training_lowers_the_loss(shards, tmp_path):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        _, history = train_for(source, ids, labels, 8, tmp_path / "run")
    assert history[-1]["loss"] < history[0]["loss"]


def test_segment_scores_are_summed_over_time_and_averaged_over_segments(shards):
    paths, descriptions, _ = shards
    model = make_model()
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        got = segment_scores(model, source, "v3", n_segments=4, length=5)
        indices = sampling.segment_indices(15, 4, 5)
        per_segment = [model.predict_on_batch(
            {"features": source.frames("v3", row)["features"][None]})["scores"][0]
            for row in indices]
        expected = scoring.video_scores(np.stack([np.asarray(s) for s in per_segment]))
        scores, attention = whole_video(model, source, "v3")
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert scores.shape == (15, 2) and attention.shape == (15, 3, 3)
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1, rtol=1e-5)


def test_hmdb51_model_starts_from_ucf101_but_its_classifier(shards):
    source = build_model("lstm", 5, (45,), SIZES)
    target = build_model("lstm", 3, (45,), SIZES)
    before = target.get_layer("head").get_weights()
    transfer_except_classifier(source, target)
    np.testing.assert_array_equal(target.get_layer("recurrent").get_weights()[0],
                                  source.get_layer("recurrent").get_weights()[0])
    head = target.get_layer("head").get_weights()
    source_head = source.get_layer("head").get_weights()
    np.testing.assert_array_equal(head[0], source_head[0])
    np.testing.assert_array_equal(head[-2], before[-2])
    assert head[-1].shape == (3,)


def test_history_csv_has_one_row_per_epoch(tmp_path):
    write_history([{"epoch": 0, "loss": 1.5, "seconds": 2},
                   {"epoch": 1, "loss": 1.0, "seconds": 2}], tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,seconds" and lines[2] == "1,1.0,2"


def test_feature_statistics_are_per_channel_over_sampled_frames(shards):
    paths, descriptions, videos = shards
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        stats = feature_statistics(source, ["v0", "v1"], frames_per_video=3)
        sample = np.concatenate([source.frames("v0", np.array([0, 6, 11]))["features"],
                                 source.frames("v1", np.array([0, 6, 12]))["features"]])
    mean, variance = stats["features"]
    values = sample.reshape(-1, 5).astype(np.float64)
    np.testing.assert_allclose(mean, values.mean(0), rtol=1e-6)
    np.testing.assert_allclose(variance, values.var(0), rtol=1e-6)


def test_segment_scores_in_bounded_calls_equal_one_call(shards):
    paths, _, _ = shards
    model = make_model()
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        whole = segment_scores(model, source, "v3", n_segments=5, length=6)
        for per_call in (1, 2):
            np.testing.assert_allclose(
                segment_scores(model, source, "v3", n_segments=5, length=6, per_call=per_call),
                whole, rtol=1e-5)


def test_evaluate_refuses_windows_far_beyond_the_longest_test_video(shards, tmp_path):
    """The test videos have 12 to 17 frames: a length or a segment count over 34 is refused
    before any model call; 20 frames are padded, and evaluated."""
    paths, _, videos = shards
    make_model().save(tmp_path / "model.keras")
    manifest = pd.DataFrame({"video_id": list(videos), "split": "test",
                             "label_index": [label for _, label in videos.values()],
                             "label": [f"c{label}" for _, label in videos.values()]})
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        with pytest.raises(ValueError, match=r"\[evaluate\] length = 35: the longest test "
                                             r"video has 17 frames.*at most 34"):
            evaluate_model(tmp_path, source, manifest, 3, 35)
        with pytest.raises(ValueError, match=r"\[evaluate\] segments = 35: the longest"):
            evaluate_model(tmp_path, source, manifest, 35, 6)
        _, metrics = evaluate_model(tmp_path, source, manifest, 3, 20)
    assert metrics["videos"] == 6


def test_held_out_accuracy_scores_one_centred_window_per_video(shards):
    """The label-carrying channel of the fixture's features decides a 'model' that sums it per
    class: every video is right with its own labels and wrong with the labels swapped."""
    paths, descriptions, videos = shards
    inputs = keras.Input((None, 3, 3, 5), name="features")
    channel_means = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(2, 3)))(inputs)
    scores = keras.layers.Softmax()(channel_means[..., :2] * 10)
    model = keras.Model({"features": inputs}, {"scores": scores})
    ids = [v for v in videos]
    labels = [videos[v][1] for v in ids]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        assert held_out_accuracy(model, source, ids, labels, 5, batch=4) == 1.0
        swapped = [1 - label for label in labels]
        assert held_out_accuracy(model, source, ids, swapped, 5, batch=4) == 0.0
        half = labels[:3] + swapped[3:]
        assert held_out_accuracy(model, source, ids, half, 5, batch=4) == 0.5


def test_checksum_except_classifier_ignores_the_softmax_only():
    source = build_model("lstm", 5, (45,), SIZES)
    target = build_model("lstm", 3, (45,), SIZES)
    assert checksum_except_classifier(source) != checksum_except_classifier(
        target)
    transfer_except_classifier(source, target)
    assert checksum_except_classifier(source) == checksum_except_classifier(
        target)


def assert_same_batches(expected, got):
    assert len(expected) == len(got)
    for (inputs, targets), (got_inputs, got_targets) in zip(expected, got):
        assert set(inputs) == set(got_inputs)
        for name, values in inputs.items():
            assert got_inputs[name].shape == values.shape
            np.testing.assert_array_equal(np.asarray(got_inputs[name], np.float32), values)
        np.testing.assert_array_equal(got_targets["scores"], targets["scores"])


@pytest.mark.parametrize("readers,threads", [(1, False), (2, False), (2, True)])
def test_parallel_loader_gives_the_single_reader_batches(shards, readers, threads):
    """Same seed, same epoch: the same batches in the same order, whatever the readers; both
    streams (flow one frame shorter), and snippets longer than some videos (padded)."""
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    inputs = ModelInputs.of("videolstm", "rgb", "motion")
    with FeatureSource(paths, inputs) as source, \
            SnippetLoader(source, 4, 14, readers, threads=threads) as loader:
        for epoch in (0, 1):
            expected = list(training_batches(source, ids, labels, 4, 14,
                                             np.random.default_rng([0, epoch])))
            got = list(loader.dataset(ids, labels, [0, epoch]).as_numpy_iterator())
            assert all(batch[0][name].dtype == np.float32 for batch in got
                       for name in ("features", "motion"))
            assert_same_batches(expected, got)
            stored = list(loader.epoch(ids, labels, np.random.default_rng([0, epoch])))
            assert stored[0][0]["features"].dtype == np.float16
            assert_same_batches(expected, stored)


def test_a_new_epoch_takes_over_an_unfinished_one(shards):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source, \
            SnippetLoader(source, 2, 8, 2, slots=2) as loader:
        abandoned = loader.epoch(ids, labels, np.random.default_rng(5))
        next(abandoned)
        expected = list(training_batches(source, ids, labels, 2, 8,
                                         np.random.default_rng(6)))
        assert_same_batches(expected, list(loader.epoch(ids, labels, np.random.default_rng(6))))
        with pytest.raises(RuntimeError, match="newer epoch"):
            next(abandoned)


def test_a_reader_error_reaches_training_and_the_loader_goes_on(shards, tmp_path):
    """A damaged chunk read by a reader process is the CacheCorruptError naming the shard,
    raised where the batches are consumed; later epochs without that video still load."""
    paths, descriptions, videos = shards
    rgb = next(iter(paths["rgb"]))
    with h5py.File(rgb, "r") as handle:
        data = handle["v3"]["pool5"]
        chunks = [data.id.get_chunk_info(i) for i in range(data.id.get_num_chunks())]
    damaged = bytearray(open(rgb, "rb").read())
    for chunk in chunks:
        middle = chunk.byte_offset + chunk.size // 2
        damaged[middle:middle + 4] = bytes(b ^ 0xFF for b in damaged[middle:middle + 4])
    open(rgb, "wb").write(bytes(damaged))
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source, \
            SnippetLoader(source, 3, 8, 2) as loader:
        with pytest.raises(cache.CacheCorruptError, match=r"rgb\.h5.*v3/pool5"):
            list(loader.epoch(ids, labels, np.random.default_rng(0)))
        good = [v for v in ids if v != "v3"]
        good_labels = [videos[v][1] for v in good]
        expected = list(training_batches(source, good, good_labels, 3, 8,
                                         np.random.default_rng(1)))
        assert_same_batches(expected, list(loader.epoch(good, good_labels,
                                                        np.random.default_rng(1))))


def test_training_through_the_parallel_loader_equals_the_single_reader(shards, tmp_path):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        single, _ = train_for(source, ids, labels, 2, tmp_path / "single")
        with SnippetLoader(source, 3, 8, 2) as loader:
            parallel, _ = train_for(source, ids, labels, 2, tmp_path / "parallel",
                                    loader=loader)
    for a, b in zip(single.get_weights(), parallel.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_preloaded_source_reads_as_the_shards_do(shards):
    """Every usable frame of both streams (flow one frame shorter: the common part), any
    indices, the stored dtype kept; its byte count is what the shards said before reading."""
    paths, descriptions, videos = shards
    inputs = ModelInputs.of("videolstm", "rgb", "motion")
    with FeatureSource(paths, inputs) as source:
        ids = sorted(source.videos_cached())
        memory = PreloadedSource(source, ids)
        assert memory.videos_cached() == set(ids) and memory.shapes() == source.shapes()
        assert memory.dtypes() == {"features": np.float16, "motion": np.float16}
        for video in ids:
            assert memory.length(video) == source.length(video) == videos[video][0] - 1
            indices = np.array([0, 3, 3, source.length(video) - 1])
            for name, values in source.frames(video, indices).items():
                np.testing.assert_array_equal(memory.frames(video, indices)[name], values)
        frames = sum(videos[v][0] - 1 for v in ids)
        assert source.nbytes(ids) == frames * (3 * 3 * 5 * 2) * 2
        assert sum(a.nbytes for v in ids for a in source.whole(v).values()) == source.nbytes(ids)


def test_memory_loader_gives_the_single_reader_batches(shards):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs.of("videolstm", "rgb", "motion")) as source:
        cached = [v for v in ids if v in source.videos_cached()]
        cached_labels = [videos[v][1] for v in cached]
        loader = MemoryLoader(PreloadedSource(source, cached), 4, 14)
        for epoch in (0, 1):
            expected = list(training_batches(source, cached, cached_labels, 4, 14,
                                             np.random.default_rng([0, epoch])))
            got = list(loader.dataset(cached, cached_labels, [0, epoch]).as_numpy_iterator())
            assert all(batch[0]["motion"].dtype == np.float32 for batch in got)
            assert_same_batches(expected, got)
            stored = list(loader.epoch(cached, cached_labels, np.random.default_rng([0, epoch])))
            assert stored[0][0]["features"].dtype == np.float16
            assert_same_batches(expected, stored)


def test_training_from_memory_equals_the_parallel_loader(shards, tmp_path):
    paths, descriptions, videos = shards
    ids, labels = list(videos), [label for _, label in videos.values()]
    with FeatureSource(paths, ModelInputs("rgb", "pool5", False)) as source:
        with SnippetLoader(source, 3, 8, 2) as loader:
            parallel, _ = train_for(source, ids, labels, 2, tmp_path / "parallel",
                                    loader=loader)
        memory = PreloadedSource(source, ids)
        preloaded, _ = train_for(memory, ids, labels, 2, tmp_path / "memory",
                                 loader=MemoryLoader(memory, 3, 8))
    for a, b in zip(parallel.get_weights(), preloaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_model_preloads_within_the_bound_and_reads_shards_beyond_it(shards, tmp_path,
                                                                         monkeypatch):
    """The same weights and history whether the features fit in memory (held whole) or not
    (read by the snippet loader's processes); over the bound nothing is read whole."""
    paths, descriptions, videos = shards
    manifest = pd.DataFrame({"video_id": list(videos) + ["v_broken"],
                             "label": [f"c{label}" for _, label in videos.values()] + ["c0"],
                             "label_index": [label for _, label in videos.values()] + [0],
                             "split": ["train", "test"] * 3 + ["train"]})
    section = types.SimpleNamespace(epochs=2, batch_size=2, snippet=8, learning_rate=0.01,
                                    rho=0.9, readers=2)
    runs, whole = {}, FeatureSource.whole
    for name, share in (("memory", bounds.PRELOAD_SHARE), ("shards", 0.0)):
        monkeypatch.setattr(bounds, "PRELOAD_SHARE", share)
        read_whole = []
        monkeypatch.setattr(FeatureSource, "whole",
                            lambda self, video: read_whole.append(video) or whole(self, video))
        with FeatureSource(paths, ModelInputs.of("videolstm", "rgb", "motion")) as source:
            train_model(tmp_path / name, source, manifest, "videolstm", "motion", SIZES,
                        section, 0, Checkpoints(tmp_path / name / "checkpoints"))
        runs[name] = (keras.models.load_model(tmp_path / name / "model.keras"),
                      pd.read_csv(tmp_path / name / "history.csv"), read_whole)
    assert sorted(runs["memory"][2]) == sorted(videos) and runs["shards"][2] == []
    for a, b in zip(runs["memory"][0].get_weights(), runs["shards"][0].get_weights()):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(runs["memory"][1].drop(columns="seconds"),
                                  runs["shards"][1].drop(columns="seconds"))


def test_features_are_preloaded_only_within_a_share_of_memory():
    memory = 24 << 30
    assert bounds.fits_preload(int(bounds.PRELOAD_SHARE * memory), memory)
    assert not bounds.fits_preload(int(bounds.PRELOAD_SHARE * memory) + 1, memory)


def test_reader_count_is_validated():
    assert reader_count(3) == 3
    assert reader_count(0) == len(os.sched_getaffinity(0))
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="train.readers"):
            reader_count(bad)


def test_without_curves_training_gives_the_same_weights_and_no_held_out_column(shards,
                                                                              tmp_path):
    paths, descriptions, videos = shards
    manifest = pd.DataFrame({"video_id": list(videos),
                             "label": [f"c{label}" for _, label in videos.values()],
                             "label_index": [label for _, label in videos.values()],
                             "split": ["train", "test"] * 3})
    section = types.SimpleNamespace(epochs=2, batch_size=2, snippet=8, learning_rate=0.01,
                                    rho=0.9, readers=1)
    runs = {}
    for curves in (True, False):
        folder = tmp_path / str(curves)
        with FeatureSource(paths, ModelInputs.of("videolstm", "rgb", "motion")) as source:
            train_model(folder, source, manifest, "videolstm", "motion", SIZES, section, 0,
                        Checkpoints(folder / "checkpoints"), curves=curves)
        runs[curves] = (keras.models.load_model(folder / "model.keras"),
                        pd.read_csv(folder / "history.csv"))
    assert scoring.HELD_OUT in runs[True][1].columns
    assert scoring.HELD_OUT not in runs[False][1].columns
    for a, b in zip(runs[True][0].get_weights(), runs[False][0].get_weights()):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(runs[True][1].drop(columns=["seconds", scoring.HELD_OUT]),
                                  runs[False][1].drop(columns="seconds"))
