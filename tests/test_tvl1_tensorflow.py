"""The TensorFlow Dual TV-L1: each step against the OpenCV function it mirrors or a hand-worked
case, the whole solver against cv2.optflow on clips with known motion, and the batched runner."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from pipeline.flow import tvl1_tensorflow as ttf
from pipeline.flow.tvl1 import FlowPool, TVL1Params, quantize, tvl1, video_flow
from pipeline.flow.batches import BatchedFlow, flow_runner

SHIFT = (1.5, -0.75)  # (dx, dy) pixels per frame of the moving-texture clip
SMALL = TVL1Params(nscales=2, warps=2, backend="tensorflow")  # quick to compile


def moving_texture(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n_frames, H, W) uint8 gray: a smooth periodic texture moved by SHIFT per frame (exact
    sub-pixel shifts through the Fourier domain) plus a little noise."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.random((height, width)), 2.0, mode="wrap")
    texture = (texture - texture.min()) / np.ptp(texture) * 220 + 16
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    frames = [np.fft.ifft2(np.fft.fft2(texture) * np.exp(
        -2j * np.pi * (fx * SHIFT[0] + fy * SHIFT[1]) * t)).real + rng.normal(0, 1.5, texture.shape)
        for t in range(n_frames)]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def opencv_flows(gray: np.ndarray, params: TVL1Params) -> np.ndarray:
    opencv = TVL1Params(**{**params.as_dict(), "backend": "opencv"})
    flows, flow = [], None
    for t in range(len(gray) - 1):
        flow = tvl1(gray[t], gray[t + 1], opencv, initial_flow=flow)
        flows.append(flow)
    return np.stack(flows)


def end_point_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])


def truth_error(flow: np.ndarray, border: int = 6) -> float:
    inner = flow[:, border:-border, border:-border]
    return float(np.hypot(inner[..., 0] - SHIFT[0], inner[..., 1] - SHIFT[1]).mean())


def test_pyramid_sizes_follow_cv2_resize_and_stop_under_16_pixels():
    assert ttf.pyramid_sizes(48, 64, 5, 0.8) == [(48, 64), (38, 51), (30, 41), (24, 33), (19, 26)]
    image = np.zeros((48, 64), np.float32)
    for size in ttf.pyramid_sizes(48, 64, 5, 0.8)[1:]:
        image = cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
        assert image.shape == size
    # 20 * 0.8 = 16 is kept; 16 * 0.8 rounds to 13 < 16, where OpenCV stops its pyramid
    assert ttf.pyramid_sizes(20, 64, 5, 0.8) == [(20, 64), (16, 51)]
    assert ttf.pyramid_sizes(48, 64, 1, 0.8) == [(48, 64)]


def test_resize_matches_cv2_down_by_scale_step_and_up_to_a_size():
    image = np.random.default_rng(1).random((37, 53)).astype(np.float32) * 255
    down = cv2.resize(image, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    rows, cols = ttf._linear_axis(37, 30, 1 / 0.8), ttf._linear_axis(53, 42, 1 / 0.8)
    ours = ttf._resize(tf.constant(image[None]), rows, cols).numpy()[0]
    np.testing.assert_allclose(ours, down, atol=1e-3)
    up = cv2.resize(down, (53, 37), interpolation=cv2.INTER_LINEAR)
    rows, cols = ttf._linear_axis(30, 37, 30 / 37), ttf._linear_axis(42, 53, 42 / 53)
    ours = ttf._resize(tf.constant(down[None]), rows, cols).numpy()[0]
    np.testing.assert_allclose(ours, up, atol=1e-3)


def test_bicubic_warp_matches_cv2_remap_inside_across_and_outside_the_border():
    rng = np.random.default_rng(2)
    h, w = 21, 27
    images = rng.random((2, h, w, 3)).astype(np.float32) * 255
    u1 = rng.normal(0, 4, (2, h, w)).astype(np.float32)
    u2 = rng.normal(0, 4, (2, h, w)).astype(np.float32)
    u1[0, 0, :5] = [-40.0, -3.5, -2.2, 30.0, 27.9]  # far outside, partly outside, inside
    ours = ttf.warp_bicubic(tf.constant(images), tf.constant(u1), tf.constant(u2)).numpy()
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for b in range(2):
        for c in range(3):
            expected = cv2.remap(images[b, ..., c], xs + u1[b], ys + u2[b], cv2.INTER_CUBIC,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            np.testing.assert_allclose(ours[b, ..., c], expected, atol=2e-3)
    assert ours[0, 0, 0].tolist() == [0.0, 0.0, 0.0]


def run_network(values, network):
    values = list(values)
    for i, j in network:
        values[i], values[j] = min(values[i], values[j]), max(values[i], values[j])
    return values


def test_batcher_network_sorts_and_its_pruned_part_selects_the_median():
    # a compare-exchange network sorts every input when it sorts every 0/1 input
    for bits in range(2 ** 9):
        values = [(bits >> k) & 1 for k in range(9)]
        assert run_network(values, ttf.batcher_network(9)) == sorted(values)
        assert run_network(values, ttf.median_network(9))[4] == sorted(values)[4]
    rng = np.random.default_rng(8)
    for _ in range(500):
        values = rng.integers(0, 6, 25).tolist()  # ties included
        assert run_network(values, ttf.median_network(25))[12] == sorted(values)[12]
    assert len(ttf.median_network(25)) < len(ttf.batcher_network(25))


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_matches_cv2_median_blur(size):
    image = np.random.default_rng(3).normal(0, 3, (2, 13, 17)).astype(np.float32)
    ours = ttf.median_filter(tf.constant(image), size).numpy()
    for b in range(2):
        np.testing.assert_array_equal(ours[b], cv2.medianBlur(image[b], size))


def test_differences_follow_opencvs_border_rules_on_a_hand_worked_image():
    x = tf.constant([[[1.0, 2.0, 4.0], [0.0, 3.0, 9.0]]])
    dx, dy = ttf.centered_gradient(x)
    # one-sided halves at the borders: (2-1)/2, (4-1)/2, (4-2)/2; rows: (0-1)/2 on both rows
    np.testing.assert_allclose(dx.numpy()[0], [[0.5, 1.5, 1.0], [1.5, 4.5, 3.0]])
    np.testing.assert_allclose(dy.numpy()[0], [[-0.5, 0.5, 2.5], [-0.5, 0.5, 2.5]])
    fx, fy = ttf.forward_gradient(x)
    np.testing.assert_allclose(fx.numpy()[0], [[1.0, 2.0, 0.0], [3.0, 6.0, 0.0]])
    np.testing.assert_allclose(fy.numpy()[0], [[-1.0, 1.0, 5.0], [0.0, 0.0, 0.0]])
    div = ttf.divergence(x, 2 * x).numpy()[0]
    # v1(y,x) - v1(y,x-1) + v2(y,x) - v2(y-1,x), the terms before the first row/column zero
    np.testing.assert_allclose(div, [[1 + 2, 1 + 4, 2 + 8], [0 - 2, 3 + 2, 6 + 10]])


def test_divergence_is_minus_the_adjoint_of_the_forward_gradient():
    rng = np.random.default_rng(4)
    u = tf.constant(rng.normal(size=(1, 9, 11)).astype(np.float32))
    p1, p2 = rng.normal(size=(2, 1, 9, 11)).astype(np.float32)
    # as in the solver, where the dual variable starts at zero and the forward gradient is zero
    # on the last column (row), p1 (p2) stays zero there
    p1[..., -1] = 0.0
    p2[:, -1, :] = 0.0
    p1, p2 = tf.constant(p1), tf.constant(p2)
    gx, gy = ttf.forward_gradient(u)
    lhs = float(tf.reduce_sum(gx * p1 + gy * p2))
    assert lhs == pytest.approx(-float(tf.reduce_sum(u * ttf.divergence(p1, p2))), rel=1e-4)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return moving_texture(5, 48, 64)


def test_solver_agrees_with_opencv_at_opencvs_defaults(clip):
    """The issue's targets: mean end-point error between the solvers <= 0.05 px, accuracy
    against the known motion no worse than OpenCV's."""
    params = TVL1Params(backend="tensorflow")
    ours = ttf.video_pairs(clip, params)
    reference = opencv_flows(clip, params)
    assert end_point_error(ours, reference).mean() <= 0.05
    assert truth_error(ours) <= truth_error(reference) + 0.005
    assert truth_error(reference) < 0.15  # the clip's motion is recoverable at all
    levels = np.abs(quantize(ours, 20).astype(int) - quantize(reference, 20).astype(int))
    assert (levels > 1).mean() <= 0.01  # where they differ: the border, where flow leaves the image


@pytest.mark.parametrize("settings", [
    dict(gamma=0.3),
    dict(use_initial_flow=True),
    dict(median_filtering=1, epsilon=0.001, scale_step=0.7, tau=0.2, lambda_=0.3, theta=0.25),
])
def test_solver_agrees_with_opencv_on_other_settings(clip, settings):
    params = TVL1Params(nscales=3, warps=3, backend="tensorflow", **settings)
    ours = ttf.video_pairs(clip, params)
    reference = opencv_flows(clip, params)
    assert end_point_error(ours, reference).mean() <= 0.05
    assert truth_error(ours) <= truth_error(reference) + 0.005


def test_a_pairs_flow_does_not_depend_on_the_pairs_batched_beside_it():
    gray = np.concatenate([moving_texture(3, 24, 32, seed=5),
                           np.random.default_rng(6).integers(0, 256, (3, 24, 32), np.uint8)])
    prev, nxt = gray[[0, 1, 3, 4]], gray[[1, 2, 4, 5]]
    together = ttf.solve_pairs(prev, nxt, SMALL, batch_pairs=4)
    for k in range(4):
        alone = ttf.solve_pairs(prev[k:k + 1], nxt[k:k + 1], SMALL, batch_pairs=1)[0]
        np.testing.assert_allclose(together[k], alone, atol=1e-4)
    # three pairs are padded to a batch of four by repeating the last: the same flows
    np.testing.assert_allclose(ttf.solve_pairs(prev[:3], nxt[:3], SMALL, batch_pairs=4),
                               together[:3], atol=1e-4)


def test_tvl1_and_video_flow_dispatch_on_the_backend():
    gray = moving_texture(3, 24, 32, seed=7)
    single = tvl1(gray[0], gray[1], SMALL)
    np.testing.assert_allclose(single, ttf.solve_pairs(gray[:1], gray[1:2], SMALL)[0], atol=1e-4)
    frames = np.repeat(gray[..., None], 3, axis=-1)
    flows = video_flow(frames, SMALL)
    assert flows.shape == (2, 24, 32, 2) and flows.dtype == np.uint8
    assert np.abs(flows.astype(int) - quantize(ttf.video_pairs(gray, SMALL), 20)).max() <= 1


def test_solver_refuses_frames_of_another_size_or_type():
    solver = ttf.solver(SMALL, 24, 32)
    with pytest.raises(ValueError, match=r"prev must be uint8 \(1, 24, 32\)"):
        solver(np.zeros((1, 20, 32), np.uint8), np.zeros((1, 24, 32), np.uint8))
    with pytest.raises(ValueError, match="next must be uint8"):
        solver(np.zeros((1, 24, 32), np.uint8), np.zeros((1, 24, 32), np.float32))


@pytest.mark.parametrize("use_initial_flow", [False, True])
def test_batched_runner_gives_each_videos_own_flow(tmp_path, use_initial_flow):
    from pipeline.flow.tvl1 import flow_gray
    from pipeline.video import read_frames, write_video
    params = TVL1Params(nscales=2, warps=2, backend="tensorflow",
                        use_initial_flow=use_initial_flow)
    paths = []
    for k, n_frames in enumerate([4, 7, 2]):
        paths.append(tmp_path / f"v{k}.avi")
        gray = moving_texture(n_frames, 24, 32, seed=10 + k)
        write_video(paths[-1], np.repeat(gray[..., None], 3, axis=-1))
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    with BatchedFlow(processes=2, batch_pairs=4) as runner:
        results = dict(runner.map_videos([*map(str, paths), str(broken)], params))
    assert set(results) == {*map(str, paths), str(broken)}
    assert isinstance(results[str(broken)], Exception) and "broken.avi" in str(results[str(broken)])
    assert runner.solver_seconds > 0
    for path in paths:
        gray = np.stack([flow_gray(frame) for frame in read_frames(str(path))])
        expected = quantize(ttf.video_pairs(gray, params), params.bound)
        assert results[str(path)].shape == expected.shape
        assert np.abs(results[str(path)].astype(int) - expected).max() <= 1


def test_each_backend_has_its_runner_and_the_opencv_pool_refuses_the_other():
    opencv, tensorflow = TVL1Params(), TVL1Params(backend="tensorflow")
    with flow_runner(opencv, 1) as runner:
        assert isinstance(runner, FlowPool)
        with pytest.raises(ValueError, match="FlowPool runs OpenCV's solver"):
            runner.flow_frames(np.zeros((2, 8, 8, 3), np.uint8), tensorflow)
    with flow_runner(tensorflow, 1, batch_pairs=2) as runner:
        assert isinstance(runner, BatchedFlow) and runner.batch_pairs == 2
        with pytest.raises(ValueError, match="BatchedFlow runs the TensorFlow solver"):
            list(runner.map_videos([], opencv))
