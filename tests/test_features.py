"""Frame preprocessing, pool5/fc7 extraction and frame-classifier fine-tuning."""

import numpy as np
import pandas as pd
import pytest

from models import vgg16
from pipeline import cache, features
from pipeline.progress import Progress
from pipeline.report import report
from pipeline.video import HEADER_DISAGREES, VideoError, iter_frames, read_frames, write_video


def test_rgb_preprocessing_is_bgr_minus_imagenet_mean():
    frame = np.zeros((1, 8, 8, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 200, 100, 50
    out = features.preprocess(frame, "rgb", 32)
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(out[0, 5, 5], [50 - 103.939, 100 - 116.779, 200 - 123.68],
                               rtol=1e-5)


def test_flow_preprocessing_centres_zero_motion():
    flow = np.full((2, 6, 10, 2), 128, np.uint8)
    flow[1, ..., 1] = 255
    out = features.preprocess(flow, "flow", 32)
    assert out.shape == (2, 32, 32, 2)
    assert np.all(out[0] == 0) and np.all(out[1, ..., 1] == 127)


def test_batches_keep_order_and_remainder():
    frames = [np.full((2, 2), i) for i in range(5)]
    sizes = [len(b) for b in features.batches(iter(frames), 2)]
    assert sizes == [2, 2, 1]
    assert [b[0, 0, 0] for b in features.batches(iter(frames), 2)] == [0, 2, 4]


def test_extract_streams_frames_and_matches_one_big_batch():
    model = vgg16.initialise("rgb", 3, 32, "none", seed=0)
    extractor = vgg16.feature_extractor(model)
    frames = np.random.default_rng(0).integers(0, 255, (5, 24, 30, 3), dtype=np.uint8)
    pool5, fc7 = features.extract(extractor, iter(frames), "rgb", 32, batch_size=2,
                                  dtype="float32")
    assert pool5.shape == (5, 1, 1, 512) and fc7.shape == (5, 4096)
    whole_maps, whole_fc7 = extractor.predict_on_batch(features.preprocess(frames, "rgb", 32))
    np.testing.assert_allclose(pool5, whole_maps, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fc7, whole_fc7, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="no frames"):
        features.extract(extractor, iter([]), "rgb", 32, batch_size=2)


def test_sample_frame_indices_spread_over_the_video():
    assert list(features.sample_frame_indices(9, 3)) == [0, 4, 8]
    assert list(features.sample_frame_indices(2, 4)) == [0, 1]


def test_finetune_learns_a_separable_frame_task_and_freezes_the_rest():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 60, (24, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(24) % 2
    images[labels == 1, :16] += 150
    model = vgg16.initialise("rgb", 2, 32, "none", seed=0)
    conv_before = model.get_layer("block5_conv3").get_weights()[0].copy()
    fc_before = model.get_layer("fc2").get_weights()[0].copy()
    losses = features.finetune(model, images, labels, "rgb", 32, "fc1", epochs=8,
                               learning_rate=1e-4, batch_size=8, seed=0)
    assert len(losses) == 8 and losses[-1] < losses[0]
    np.testing.assert_array_equal(model.get_layer("block5_conv3").get_weights()[0], conv_before)
    assert not np.array_equal(model.get_layer("fc2").get_weights()[0], fc_before)
    predictions = model.predict_on_batch(features.preprocess(images, "rgb", 32)).argmax(1)
    assert (predictions == labels).mean() > 0.9


def test_finetune_names_an_unknown_layer():
    model = vgg16.initialise("rgb", 2, 32, "none", seed=0)
    with pytest.raises(ValueError, match="finetune_from='fc9'"):
        features.finetune(model, np.zeros((2, 32, 32, 3), np.uint8), np.zeros(2), "rgb", 32,
                          "fc9", 1, 1e-3, 2, 0)


def header_test_videos(folder):
    """Three real MJPG videos: "exact" (6 frames), "estimated" (6 frames, its header claims 4,
    as containers that store an estimate do) and "damaged" (8 frames, the fourth damaged, so
    that 3 decode)."""
    from test_video import claim_frames, damage_frame
    frames = np.random.default_rng(2).integers(0, 255, (8, 24, 32, 3), dtype=np.uint8)
    paths = {name: folder / f"{name}.avi" for name in ("exact", "estimated", "damaged")}
    write_video(paths["exact"], frames[:6])
    write_video(paths["estimated"], frames[:6])
    claim_frames(paths["estimated"], 4)
    write_video(paths["damaged"], frames)
    damage_frame(paths["damaged"], 3)
    return pd.DataFrame({"video_id": list(paths), "label_index": [0, 1, 0],
                         "n_frames": [6, 4, 8], "path": [str(p) for p in paths.values()],
                         "fingerprint": ["fa", "fb", "fc"]})


def frames_of(stream):
    """A video's decoded frames (rgb), or as many flow images as it has frame pairs (flow)."""
    if stream == "rgb":
        return lambda row: iter_frames(row.path)
    return lambda row: iter(np.full((len(read_frames(row.path)) - 1, 24, 32, 2), 128, np.uint8))


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_feature_shard_keeps_what_decodes_and_records_the_header_count(tmp_path, stream):
    extractor = vgg16.feature_extractor(vgg16.initialise(stream, 2, 32, "none", seed=0))
    videos = header_test_videos(tmp_path)
    description = cache.describe("features", {"stream": stream})
    with Progress(3, "features") as progress:
        features.write_feature_shard(tmp_path / "shard.h5", description, videos,
                                     frames_of(stream), extractor, stream, 32, 2, "float16",
                                     strict=False, progress=progress)
    with cache.Shard(tmp_path / "shard.h5", description) as shard:
        assert sorted(shard.videos) == ["damaged", "estimated", "exact"] and not shard.skipped
        assert shard.length("damaged", "fc7") == 3 - (stream == "flow")
        assert shard.info[HEADER_DISAGREES] == {"estimated": {"header": 4, "decoded": 6},
                                                "damaged": {"header": 8, "decoded": 3}}
    assert report.shard_summary([str(tmp_path / "shard.h5")])["short"] == {
        "damaged": "kept short: decoded 3 of the 8 frames its header counts (decoding stops "
                   "at a damaged frame)"}


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_strict_refuses_a_video_decoded_short_of_its_header(tmp_path, stream):
    extractor = vgg16.feature_extractor(vgg16.initialise(stream, 2, 32, "none", seed=0))
    videos = header_test_videos(tmp_path)
    with Progress(3, "features") as progress, \
            pytest.raises(VideoError, match=r"damaged.avi: decoded 3 of the 8 frames"):
        features.write_feature_shard(tmp_path / "shard.h5", cache.describe("features", {}),
                                     videos, frames_of(stream), extractor, stream, 32, 2,
                                     "float16", strict=True, progress=progress)


def test_rgb_features_are_taken_from_frames_at_the_frame_size(tmp_path, monkeypatch):
    # ExtractFeatures reads rgb frames resized to [video] frame_size (here 32x24, from videos of
    # 64x48 and 48x64), and VGG preprocessing then resizes them to the image size.
    rng = np.random.default_rng(3)
    paths = []
    for name, (h, w) in {"landscape": (48, 64), "portrait": (64, 48)}.items():
        paths.append(tmp_path / f"{name}.avi")
        write_video(paths[-1], rng.integers(0, 255, (3, h, w, 3), dtype=np.uint8))
    extractor = vgg16.feature_extractor(vgg16.initialise("rgb", 2, 32, "none", seed=0))
    seen = []
    preprocess = features.preprocess
    monkeypatch.setattr(features, "preprocess", lambda frames, stream, size: (
        seen.append(frames.shape), preprocess(frames, stream, size))[1])
    videos = pd.DataFrame({"video_id": ["landscape", "portrait"], "label_index": [0, 1],
                           "n_frames": [3, 3], "path": [str(p) for p in paths],
                           "fingerprint": ["fa", "fb"]})
    description = cache.describe("features", {"stream": "rgb", "frame_size": "32x24"})
    with Progress(2, "features") as progress:
        features.write_feature_shard(tmp_path / "shard.h5", description, videos,
                                     lambda row: iter_frames(row.path, (32, 24)), extractor,
                                     "rgb", 32, 4, "float32", strict=True, progress=progress)
    assert seen == [(3, 24, 32, 3), (3, 24, 32, 3)]
    with cache.Shard(tmp_path / "shard.h5", description) as shard:
        pool5, fc7 = features.extract(extractor, read_frames(paths[1], (32, 24)), "rgb", 32, 4,
                                      "float32")
        np.testing.assert_array_equal(shard.read("portrait", "fc7"), fc7)
