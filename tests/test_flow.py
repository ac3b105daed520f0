"""TV-L1 flow, its uint8 quantization and the spawn-based FlowPool (paper section 5.2)."""

import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter

from pipeline import cache
from pipeline.flow.tvl1 import (FlowPool, TVL1Params, dequantize, quantize, tvl1,
                           video_flow, write_flow_shard)
from pipeline.progress import Progress
from pipeline.video import HEADER_DISAGREES, VideoError, read_frames, write_video

MARGIN = 8


def texture(rng, h, w, channels=None):
    """Smooth random uint8 texture spanning [0, 255]."""
    shape = (h, w) if channels is None else (h, w, channels)
    sigma = (2.0, 2.0) if channels is None else (2.0, 2.0, 0.0)
    t = gaussian_filter(rng.random(shape), sigma)
    return np.round((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def shifted_clip(rng, shifts, h=48, w=64):
    """RGB frames (T, h, w, 3) whose content moves by shifts[t] = (dx, dy) px from t to t+1."""
    pad = 4 + sum(abs(v) for s in shifts for v in s)
    canvas = texture(rng, h + 2 * pad, w + 2 * pad, channels=3)
    x = y = pad
    frames = [canvas[y:y + h, x:x + w]]
    for dx, dy in shifts:
        x, y = x - dx, y - dy
        frames.append(canvas[y:y + h, x:x + w])
    return np.stack(frames)


def interior(a):
    return a[MARGIN:-MARGIN, MARGIN:-MARGIN]


def test_tvl1_recovers_a_known_shift():
    rng = np.random.default_rng(1)
    canvas = texture(rng, 72 + 8, 96 + 8)
    prev = canvas[4:76, 4:100]
    nxt = canvas[4 + 1:76 + 1, 4 - 2:100 - 2]  # content moves by (dx, dy) = (2, -1)
    flow = tvl1(prev, nxt, TVL1Params())
    assert flow.dtype == np.float32 and flow.shape == (72, 96, 2)
    epe = np.hypot(flow[..., 0] - 2.0, flow[..., 1] + 1.0)
    assert interior(epe).mean() < 0.05


def test_video_flow_orders_pairs_and_channels():
    rng = np.random.default_rng(2)
    frames = shifted_clip(rng, [(2, 0), (0, -1), (-1, 1)])
    q = video_flow(frames, TVL1Params())
    assert q.dtype == np.uint8 and q.shape == (3, 48, 64, 2)
    flow = dequantize(q, 20.0)
    means = interior(flow.transpose(1, 2, 0, 3)).mean(axis=(0, 1))
    np.testing.assert_allclose(means, [[2, 0], [0, -1], [-1, 1]], atol=0.1)


def test_video_flow_needs_two_rgb_frames():
    with pytest.raises(ValueError, match="at least 2 frames, got 1"):
        video_flow(np.zeros((1, 8, 8, 3), np.uint8), TVL1Params())
    with pytest.raises(ValueError, match=r"uint8 \(T, H, W, 3\)"):
        video_flow(np.zeros((3, 8, 8), np.uint8), TVL1Params())


def test_quantize_round_trip_clipping_and_end_points():
    bound = 20.0
    flow = np.random.default_rng(3).uniform(-bound, bound, (16, 16, 2)).astype(np.float32)
    back = dequantize(quantize(flow, bound), bound)
    assert back.dtype == np.float32
    assert np.abs(back - flow).max() <= bound * 2 / 255 / 2 + 1e-5

    q = quantize(np.array([-bound, 0.0, bound, -bound - 7.5, bound + 0.01, 1e6]), bound)
    assert q.dtype == np.uint8
    assert q.tolist() == [0, 128, 255, 0, 255, 255]
    np.testing.assert_array_equal(dequantize(np.array([0, 255], np.uint8), bound), [-bound, bound])


@pytest.mark.parametrize("setting, value, message", [
    ("bound", -1, "flow.bound must be > 0, got -1"),
    ("tau", 0.0, "flow.tau must be > 0, got 0.0"),
    ("lambda_", float("nan"), "flow.lambda_ must be a finite number, got nan"),
    ("gamma", -0.5, "flow.gamma must be >= 0, got -0.5"),
    ("scale_step", 1.0, "flow.scale_step must be < 1, got 1.0"),
    ("nscales", 0, "flow.nscales must be an integer >= 1, got 0"),
    ("warps", 2.5, "flow.warps must be an integer >= 1, got 2.5"),
    ("median_filtering", 4, "flow.median_filtering must be 1 (off) or an odd integer >= 3"),
    ("use_initial_flow", "yes", "flow.use_initial_flow must be a boolean, got 'yes'"),
    ("backend", "cuda", "flow.backend must be one of opencv, tensorflow, got 'cuda'"),
])
def test_params_reject_out_of_range_settings(setting, value, message):
    with pytest.raises(ValueError) as info:
        TVL1Params(**{setting: value})
    assert message in str(info.value)


def test_params_defaults_are_opencvs_and_recorded():
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    p = TVL1Params()
    assert (p.tau, p.lambda_, p.theta, p.nscales, p.warps, p.epsilon) == (
        solver.getTau(), solver.getLambda(), solver.getTheta(), solver.getScalesNumber(),
        solver.getWarpingsNumber(), solver.getEpsilon())
    assert (p.inner_iterations, p.outer_iterations, p.scale_step, p.gamma,
            p.median_filtering, p.use_initial_flow) == (
        solver.getInnerIterations(), solver.getOuterIterations(), solver.getScaleStep(),
        solver.getGamma(), solver.getMedianFiltering(), solver.getUseInitialFlow())
    d = TVL1Params(bound=15.0).as_dict()
    assert d["bound"] == 15.0 and d["warps"] == 5 and d["backend"] == "opencv" and len(d) == 14


@pytest.fixture(scope="module")
def pool():
    with FlowPool(processes=2, chunk_pairs=2) as p:
        yield p


def test_pool_equals_sequential_and_survives_a_broken_video(pool, tmp_path):
    rng = np.random.default_rng(4)
    good = [tmp_path / "a.avi", tmp_path / "b.avi"]
    write_video(good[0], shifted_clip(rng, [(1, 0)] * 3))
    write_video(good[1], shifted_clip(rng, [(0, 1)] * 5))
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    missing = tmp_path / "missing.avi"
    one_frame = tmp_path / "one_frame.avi"
    write_video(one_frame, shifted_clip(rng, []))
    bad = [broken, missing, one_frame]
    params = TVL1Params()

    results = dict(pool.map_videos([good[0], broken, good[1], missing, one_frame], params))

    assert set(results) == {str(p) for p in [*good, *bad]}
    for path in good:
        expected = video_flow(read_frames(path), params)
        np.testing.assert_array_equal(results[str(path)], expected)
    for path in bad:
        assert isinstance(results[str(path)], VideoError)
        assert str(path) in str(results[str(path)])


def test_flow_shard_keeps_what_decodes_and_records_the_header_count(pool, tmp_path):
    # A header's count may be an estimate (6 for 8 frames, or 0 when it has none): the video is
    # kept, the disagreement listed in the shard info. A damaged fourth frame ends decoding at
    # 3 of the header's 8: kept short and listed, an error when strict.
    from test_video import claim_frames, damage_frame
    rng = np.random.default_rng(7)
    paths = [tmp_path / f"{name}.avi" for name in ("estimated", "uncounted", "exact", "damaged")]
    for path in paths:
        write_video(path, shifted_clip(rng, [(1, 0)] * 7))
    claim_frames(paths[0], 6)
    claim_frames(paths[1], 0)
    damage_frame(paths[3], 3)
    videos = pd.DataFrame({"video_id": [p.stem for p in paths], "path": [str(p) for p in paths],
                           "n_frames": [6, 0, 8, 8], "fingerprint": ["f1", "f2", "f3", "f4"]})
    description = cache.describe("flow", {"bound": 20.0})
    with Progress(4, "flow") as progress:
        write_flow_shard(tmp_path / "shard.h5", description, videos, TVL1Params(), pool,
                         strict=False, progress=progress)
    with cache.Shard(tmp_path / "shard.h5", description) as shard:
        assert sorted(shard.videos) == ["damaged", "estimated", "exact", "uncounted"]
        assert not shard.skipped
        assert {video: shard.length(video, "flow") for video in shard.videos} == {
            "estimated": 7, "exact": 7, "uncounted": 7, "damaged": 2}
        assert shard.info[HEADER_DISAGREES] == {"estimated": {"header": 6, "decoded": 8},
                                                "uncounted": {"header": 0, "decoded": 8},
                                                "damaged": {"header": 8, "decoded": 3}}
    with Progress(4, "flow") as progress, \
            pytest.raises(VideoError, match=r"damaged.avi: decoded 3 of the 8 frames"):
        write_flow_shard(tmp_path / "strict.h5", description, videos, TVL1Params(), pool,
                         strict=True, progress=progress)


def test_flow_shard_copies_held_videos_instead_of_computing_them(pool, tmp_path):
    """A new sharding: the video an old shard holds is copied (TV-L1 runs for the other one
    only) and the copy equals the original, fingerprint included."""
    rng = np.random.default_rng(3)
    paths = [tmp_path / f"{name}.avi" for name in ("old", "new")]
    for path in paths:
        write_video(path, shifted_clip(rng, [(1, 0)] * 4))
    videos = pd.DataFrame({"video_id": ["old", "new"], "path": [str(p) for p in paths],
                           "n_frames": [5, 5], "fingerprint": ["f-old", "f-new"]})
    description = cache.describe("flow", {"bound": 20.0})
    with Progress(1, "flow") as progress:
        write_flow_shard(tmp_path / "first.h5", description, videos[:1], TVL1Params(), pool,
                         strict=True, progress=progress)

    class Recording:
        def __init__(self):
            self.asked = []

        def map_videos(self, video_paths, params):
            self.asked += video_paths
            return pool.map_videos(video_paths, params)

    recording = Recording()
    with Progress(2, "flow") as progress:
        write_flow_shard(tmp_path / "second.h5", description, videos, TVL1Params(), recording,
                         strict=True, progress=progress, held={"old": tmp_path / "first.h5"})
    assert recording.asked == [str(paths[1])]
    with cache.Shard(tmp_path / "first.h5") as first, cache.Shard(tmp_path / "second.h5") as second:
        assert sorted(second.videos) == ["new", "old"]
        np.testing.assert_array_equal(second.read("old", "flow"), first.read("old", "flow"))
        assert second.attrs("old")["fingerprint"] == "f-old"
        assert second.attrs("new")["fingerprint"] == "f-new"


def test_pool_frames_equal_sequential_with_and_without_initial_flow(pool):
    frames = shifted_clip(np.random.default_rng(5), [(1, -1), (2, 0), (0, 1), (1, 1), (-1, 0)])
    for params in (TVL1Params(), TVL1Params(use_initial_flow=True, bound=10.0)):
        np.testing.assert_array_equal(pool.flow_frames(frames, params), video_flow(frames, params))


def test_flow_is_computed_at_the_frame_size_whatever_the_video_size(tmp_path):
    # [video] frame_size = 32x24: videos of 64x48, 48x64 (portrait) and 80x40 are all stretched
    # to 32x24 before TV-L1, in the pool as in video_flow; None keeps each video's size.
    rng = np.random.default_rng(8)
    sizes = {"landscape": (48, 64), "portrait": (64, 48), "wide": (40, 80)}
    paths = {}
    for name, (h, w) in sizes.items():
        paths[name] = tmp_path / f"{name}.avi"
        write_video(paths[name], shifted_clip(rng, [(1, 0), (0, 1), (1, 1)], h=h, w=w))
    params = TVL1Params(nscales=2, warps=2)
    with FlowPool(processes=2, chunk_pairs=2, frame_size=(32, 24)) as pool:
        results = dict(pool.map_videos([str(p) for p in paths.values()], params))
        frames = read_frames(paths["portrait"])
        np.testing.assert_array_equal(pool.flow_frames(frames, params),
                                      video_flow(frames, params, (32, 24)))
    for name, path in paths.items():
        flow = results[str(path)]
        assert flow.shape == (3, 24, 32, 2) and flow.dtype == np.uint8, name
        np.testing.assert_array_equal(flow, video_flow(read_frames(path), params, (32, 24)))
        np.testing.assert_array_equal(flow, video_flow(read_frames(path, (32, 24)), params))
    assert video_flow(read_frames(paths["wide"]), params).shape == (3, 40, 80, 2)


def test_flow_at_the_video_own_size_is_unchanged_by_the_frame_size():
    # The CPU profile's frame size is the synthetic frames' own: nothing is resized.
    frames = shifted_clip(np.random.default_rng(9), [(1, 0), (0, 1)])
    np.testing.assert_array_equal(video_flow(frames, TVL1Params(), (64, 48)),
                                  video_flow(frames, TVL1Params()))


def _flow_in_forked_child(frames, results):
    os.setpgrp()  # so that a hung child can be killed together with its pool's workers
    with FlowPool(processes=2, chunk_pairs=1) as pool:
        results.put(pool.flow_frames(frames, TVL1Params()))


def test_pool_runs_in_a_fork_of_a_process_that_used_opencv_threads():
    frames = shifted_clip(np.random.default_rng(6), [(1, 0), (0, 1), (1, 1)])
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        expected = video_flow(frames, TVL1Params())
        time.sleep(0.2)  # OpenCV's pool threads go idle: the state in which fork-then-use hangs
        fork = multiprocessing.get_context("fork")
        results = fork.Queue()
        child = fork.Process(target=_flow_in_forked_child, args=(frames, results))
        child.start()
        try:
            got = results.get(timeout=60)
        except queue.Empty:
            got = None
        child.join(timeout=10)
        if child.is_alive():
            os.killpg(child.pid, signal.SIGKILL)
            child.join()
    finally:
        cv2.setNumThreads(threads)
    assert got is not None, "FlowPool in a forked child did not finish within 60 s"
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)


STOPPED_MID_FLOW = textwrap.dedent("""
    import faulthandler, signal, sys
    import numpy as np
    from pipeline import termination
    from pipeline.flow.tvl1 import FlowPool, TVL1Params
    # as from a terminal: a background job (`cmd &`, nohup) inherits SIGINT ignored, and then
    # the command rightly ignores it too; that made this test fail whenever pytest ran so
    signal.signal(signal.SIGINT, signal.default_int_handler)
    termination.install()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's dump of a slow stop
    print("SIGINT handler", signal.getsignal(signal.SIGINT), "blocked",
          sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])), file=sys.stderr, flush=True)
    frames = np.random.default_rng(0).integers(0, 255, (17, 240, 320, 3), dtype=np.uint8)
    partial = sys.argv[1] + "-partial"
    open(partial, "w").close()
    try:
        with FlowPool(processes=2, chunk_pairs=8) as pool:  # two chunks of ~15 s each
            pool.flow_frames(frames, TVL1Params())
    finally:
        import os
        os.unlink(partial)
""")


KILLED_MID_RESULT = textwrap.dedent("""
    import faulthandler, struct, sys, time
    from pipeline.flow.tvl1 import FlowPool

    def half_sent_result():
        # in the worker: a result message's header and first bytes, then nothing, as when
        # the worker is killed while sending a chunk's flow
        import gc
        from multiprocessing.queues import SimpleQueue
        results = next(o for o in gc.get_objects() if isinstance(o, SimpleQueue))
        results._writer._send(struct.pack("!i", 1 << 20) + b"partial")
        time.sleep(120)

    def reading_half_message():
        for frame in sys._current_frames().values():
            while frame is not None:
                if frame.f_code.co_name == "_recv_bytes":
                    return True
                frame = frame.f_back
        return False

    if __name__ == "__main__":
        pool = FlowPool(processes=1)
        pool._executor.submit(half_sent_result)
        deadline = time.monotonic() + 60
        while not reading_half_message() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reading_half_message(), "the pool's thread never read the half message"
        faulthandler.dump_traceback_later(20, exit=True)  # stuck: every stack, then exit 1
        pool.terminate()
        print("terminated")
""")


def test_terminate_returns_when_a_worker_dies_while_sending_a_result(tmp_path):
    # CPython 3.11's executor thread waited forever for the rest of the message, and
    # terminate() for that thread: likely why the full-disk fault test once hung for 8 minutes
    script = tmp_path / "killed_mid_result.py"
    script.write_text(KILLED_MID_RESULT)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               cwd=Path(__file__).resolve().parents[1])
    try:
        out, err = process.communicate(timeout=120)
    finally:
        for pid, _ in _session_processes(process.pid):
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 0 and "terminated" in out, err[-3000:]


def _session_processes(sid: int) -> list[tuple[int, float]]:
    """(pid, CPU seconds) of the live processes of a session."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append((int(stat.parent.name),
                          (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")))
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_flow_pool_at_once_and_leaves_no_process(tmp_path, stop):
    # SIGTERM (timeout, SLURM, Kubernetes) used to end the process on the spot, orphaning its
    # workers, which then blocked on a pipe write; SIGINT waited for the running chunks.
    output, log = tmp_path / "shard.h5", tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", STOPPED_MID_FLOW, str(output)],
                                   stderr=stderr, start_new_session=True,
                                   cwd=Path(__file__).resolve().parents[1])
    # signal once both workers compute TV-L1: past their start (imports take about a CPU
    # second each), mid chunk
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and sum(
            cpu > 3.0 for pid, cpu in _session_processes(process.pid) if pid != process.pid) < 2:
        time.sleep(0.1)
    try:
        assert process.poll() is None, log.read_text()
        process.send_signal(stop)  # to the command alone, as Kubernetes does
        stopped = time.monotonic()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # slow: every thread's stack into the log, then wait
            process.send_signal(signal.SIGUSR1)
            try:
                process.wait(timeout=55)
            except subprocess.TimeoutExpired:
                pass
        waited = time.monotonic() - stopped
        while _session_processes(process.pid) and time.monotonic() < stopped + 20:
            time.sleep(0.1)
        left = _session_processes(process.pid)
    finally:
        for pid, _ in _session_processes(process.pid):
            os.kill(pid, signal.SIGKILL)
    assert waited < 5, f"the command took {waited:.0f} s to stop:\n{log.read_text()}"
    assert not left, f"processes left running: {left}"
    assert not (tmp_path / "shard.h5-partial").exists()
    expected = "Terminated: stopped by SIGTERM" if stop == signal.SIGTERM else "KeyboardInterrupt"
    assert expected in log.read_text()
