"""The HDF5 shard format: round trip, refusal of other settings, no half-written shards, and
a full disk as an error naming the shard."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from pipeline import cache


def description(bound=20.0, shards=4, version=None):
    desc = cache.describe("flow", {"bound": bound, "shards": shards, "tvl1": {"tau": 0.25}},
                          {"dataset": "abc123"})
    if version:
        desc["algorithm_version"] = version
    return desc


def write(path, desc, videos=("v_a", "v_b")):
    rng = np.random.default_rng(0)
    arrays = {v: rng.integers(0, 255, (3, 6, 8, 2), dtype=np.uint8) for v in videos}
    with cache.ShardWriter(path, desc) as writer:
        for video, array in arrays.items():
            writer.add(video, {"flow": array}, {"label_index": 1})
        writer.skip("v_broken", "cannot open v_broken.avi")
        writer.info["seconds"] = 1.5
    return arrays


def test_round_trip_keeps_arrays_attributes_and_skips(tmp_path):
    path = tmp_path / "shard.h5"
    arrays = write(path, description())
    with cache.Shard(path, description()) as shard:
        assert shard.videos == ["v_a", "v_b"]
        assert shard.skipped == {"v_broken": "cannot open v_broken.avi"}
        assert shard.info == {"seconds": 1.5}
        np.testing.assert_array_equal(shard.read("v_b", "flow"), arrays["v_b"])
        np.testing.assert_array_equal(shard.read("v_a", "flow", np.array([2, 0, 2])),
                                      arrays["v_a"][[2, 0, 2]])
        np.testing.assert_array_equal(shard.read("v_a", "flow", slice(1, 3)), arrays["v_a"][1:3])
        assert shard.length("v_a", "flow") == 3
        assert shard.attrs("v_a")["label_index"] == 1
        np.testing.assert_array_equal(np.stack(list(shard.iter_frames("v_a", "flow", chunk=2))),
                                      arrays["v_a"])
        with pytest.raises(cache.VideoNotCached, match="cannot open v_broken.avi"):
            shard.read("v_broken", "flow")


def test_other_parameters_are_refused_naming_the_setting(tmp_path):
    path = tmp_path / "shard.h5"
    write(path, description(bound=20.0))
    with pytest.raises(cache.CacheMismatchError, match=r"shard\.h5.*bound=20\.0.*bound=10\.0"):
        cache.Shard(path, description(bound=10.0))


def test_nested_parameter_difference_is_named(tmp_path):
    path = tmp_path / "shard.h5"
    write(path, description())
    other = description()
    other["params"]["tvl1"]["tau"] = 0.5
    with pytest.raises(cache.CacheMismatchError, match=r"tvl1\.tau=0\.25"):
        cache.Shard(path, other)


def test_other_algorithm_version_is_refused(tmp_path):
    path = tmp_path / "shard.h5"
    write(path, description(version=7))
    with pytest.raises(cache.CacheMismatchError, match="algorithm_version=7"):
        cache.Shard(path, description())


def test_hash_follows_the_algorithm_version_not_the_package_version(monkeypatch):
    """A release leaves the path (so the cache) alone; a new flow algorithm moves it."""
    assert cache.short_hash(description(bound=20)) != cache.short_hash(description(bound=10))
    before = cache.short_hash(description())
    import pipeline
    monkeypatch.setattr(pipeline, "__version__", "9.9.9")
    assert cache.short_hash(description()) == before
    monkeypatch.setitem(cache.ALGORITHM_VERSIONS, "flow", cache.ALGORITHM_VERSIONS["flow"] + 1)
    assert cache.short_hash(description()) != before


def test_a_stage_without_an_algorithm_version_is_refused():
    with pytest.raises(KeyError, match="no algorithm version"):
        cache.describe("optical-flow", {})


def test_unfinished_writer_leaves_incomplete_shard_that_is_refused(tmp_path):
    path = tmp_path / "shard.h5"
    with pytest.raises(RuntimeError):
        with cache.ShardWriter(path, description()) as writer:
            writer.add("v_a", {"flow": np.zeros((2, 4, 4, 2), np.uint8)})
            raise RuntimeError("killed mid-shard")
    with pytest.raises(cache.CacheCorruptError, match="incomplete"):
        cache.Shard(path, description())


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shard_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "shard.h5"
    write(path, description())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data[:64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(cache.CacheCorruptError, match="shard.h5"):
        with cache.Shard(path, description()) as shard:
            for video in shard.videos:
                shard.read(video, "flow")


def test_file_that_is_not_a_shard_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["complete"] = True
    with pytest.raises(cache.CacheCorruptError, match="missing attribute"):
        cache.Shard(path, description())


def test_killed_writer_leaves_no_complete_looking_output(tmp_path):
    """SIGKILL in the middle of a shard written through Luigi's temporary_path: the final path
    never appears, so Luigi and every reader see the shard as not done."""
    final = tmp_path / "shard.h5"
    script = textwrap.dedent(f"""
        import os, sys, time
        import luigi, numpy as np
        from pipeline import cache
        target = luigi.LocalTarget({str(final)!r})
        with target.temporary_path() as tmp:
            with cache.ShardWriter(tmp, cache.describe("flow", {{}}, {{}})) as writer:
                writer.add("v_a", {{"flow": np.zeros((2, 4, 4, 2), np.uint8)}})
                print("writing", flush=True)
                time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=os.getcwd())
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert not final.exists()
    assert not luigi_target_exists(final)


def luigi_target_exists(path):
    import luigi
    return luigi.LocalTarget(str(path)).exists()


def test_array_checksum_sees_values_dtype_and_shape():
    a = np.arange(6, dtype=np.float32)
    assert cache.array_checksum([a]) == cache.array_checksum([a.copy()])
    assert cache.array_checksum([a]) != cache.array_checksum([a.reshape(2, 3)])
    assert cache.array_checksum([a]) != cache.array_checksum([a.astype(np.float64)])
    b = a.copy()
    b[3] += 1
    assert cache.array_checksum([a]) != cache.array_checksum([b])


def with_videos(desc, videos_hash):
    return {**desc, "upstream": {**desc["upstream"], "videos": videos_hash}}


def test_a_new_sharding_finds_and_copies_what_old_shards_hold(tmp_path):
    """Old shard holds v_a (fingerprint 1) and v_b (fingerprint 2); a new shard of the same
    stage wants v_a with fingerprint 1 (found), v_b with another fingerprint (a changed video:
    not found) and v_c (never computed)."""
    base = description()
    old = tmp_path / "shard-000-of-001-aaaa.h5"
    arrays = {"v_a": np.arange(24, dtype=np.uint8).reshape(3, 2, 2, 2),
              "v_b": np.ones((2, 2, 2, 2), np.uint8)}
    with cache.ShardWriter(old, with_videos(base, "aaaa")) as writer:
        for (video, array), fingerprint in zip(arrays.items(), ("1", "2")):
            writer.add(video, {"flow": array}, {"fingerprint": fingerprint, "n_frames": 4})
    other_settings = tmp_path / "shard-000-of-001-bbbb.h5"
    with cache.ShardWriter(other_settings, with_videos(description(bound=5), "bbbb")) as writer:
        writer.add("v_c", {"flow": np.zeros((2, 2, 2, 2), np.uint8)}, {"fingerprint": "3"})
    wanted = {"v_a": "1", "v_b": "changed", "v_c": "3"}
    found = cache.held_videos(tmp_path, with_videos(base, "cccc"), wanted)
    assert found == {"v_a": old}
    new = tmp_path / "shard-000-of-002-cccc.h5"
    with cache.ShardWriter(new, with_videos(base, "cccc")) as writer, cache.Shard(old) as source:
        writer.copy(source, "v_a")
    with cache.Shard(new, with_videos(base, "cccc")) as shard:
        assert shard.videos == ["v_a"]
        np.testing.assert_array_equal(shard.read("v_a", "flow"), arrays["v_a"])
        assert shard.attrs("v_a") == {"fingerprint": "1", "n_frames": 4}
    # the shard being written is not a source of itself
    assert cache.held_videos(tmp_path, with_videos(base, "cccc"), wanted, exclude=new) == {
        "v_a": old}


def special_float16(shape, rng, zeros=0.7):
    """float16 features with exact zeros, and the values a codec could get wrong: -0, the
    smallest subnormal, the largest finite value, infinities and a NaN with a payload."""
    values = rng.standard_normal(shape).astype(np.float16)
    values[rng.random(shape) < zeros] = 0
    flat = values.reshape(-1)
    flat[:6] = np.array([0x8000, 0x0001, 0x7BFF, 0x7C00, 0xFC00, 0x7E5A],
                        np.uint16).view(np.float16)
    return values


def stored_chunks(path):
    with h5py.File(path, "r") as handle:
        return [(f"{video}/{name}", data.id.get_chunk_info(i))
                for video, group in handle.items() for name, data in group.items()
                for i in range(data.id.get_num_chunks())]


@pytest.mark.parametrize("codec", cache.CODECS)
def test_every_codec_stores_the_values_bit_for_bit_with_checksums(tmp_path, codec):
    rng = np.random.default_rng(0)
    arrays = {"pool5": special_float16((5, 3, 3, 16), rng),
              "fc7": rng.standard_normal((5, 40)).astype(np.float16),  # incompressible
              "flow": rng.integers(0, 255, (4, 6, 8, 2), dtype=np.uint8)}
    path = tmp_path / "shard.h5"
    with cache.ShardWriter(path, description(), codec=codec) as writer:
        writer.add("v_a", arrays)
    with cache.Shard(path, description()) as shard:
        for name, array in arrays.items():
            got = shard.read("v_a", name)
            assert got.dtype == array.dtype
            np.testing.assert_array_equal(got.view(np.uint8), array.view(np.uint8))
            np.testing.assert_array_equal(shard.read("v_a", name, np.array([3, 1, 1])).view(
                np.uint8), array[[3, 1, 1]].view(np.uint8))
    expected = cache.codec_filters(codec)
    with h5py.File(path, "r") as handle:
        for name in arrays:
            data = handle["v_a"][name]
            assert data.fletcher32 and data.chunks == (1, *arrays[name].shape[1:])
            assert data.compression == expected.get("compression")
            assert data.compression_opts == expected.get("compression_opts")


@pytest.mark.parametrize("codec", ["none", "lzf", "gzip-1", "gzip"])
@pytest.mark.parametrize("compressible", [True, False])
def test_a_damaged_chunk_is_an_error_never_other_values(tmp_path, codec, compressible):
    """Compressible or not (an optional filter stores what it cannot shrink raw), every chunk
    is checked: flipped bytes in any chunk make its read a CacheCorruptError naming the file."""
    rng = np.random.default_rng(1)
    array = (special_float16((6, 4, 4, 32), rng) if compressible
             else rng.standard_normal((6, 4, 4, 32)).astype(np.float16))
    path = tmp_path / "shard.h5"
    with cache.ShardWriter(path, description(), codec=codec) as writer:
        writer.add("v_a", {"pool5": array})
    clean = path.read_bytes()
    chunks = stored_chunks(path)
    assert len(chunks) == len(array)
    for _, chunk in chunks:
        index = chunk.chunk_offset[0]
        data = bytearray(clean)
        middle = chunk.byte_offset + chunk.size // 2
        data[middle:middle + 4] = bytes(b ^ 0x5A for b in data[middle:middle + 4])
        path.write_bytes(bytes(data))
        with cache.Shard(path, description()) as shard:
            np.testing.assert_array_equal(shard.read("v_a", "pool5", slice(0, index)).view(
                np.uint8), array[:index].view(np.uint8))
            with pytest.raises(cache.CacheCorruptError, match=r"shard\.h5.*v_a/pool5"):
                shard.read("v_a", "pool5", slice(index, index + 1))
            with pytest.raises(cache.CacheCorruptError, match=r"shard\.h5"):
                shard.read("v_a", "pool5")


def test_feature_shards_default_to_lzf_and_other_stages_to_gzip(tmp_path):
    assert cache.stage_codec("features") == "lzf"
    assert cache.stage_codec("flow") == cache.stage_codec("tubes") == "gzip"
    array = np.zeros((2, 3, 3, 4), np.float16)
    for stage, compression in (("features", "lzf"), ("flow", "gzip")):
        path = tmp_path / f"{stage}.h5"
        with cache.ShardWriter(path, cache.describe(stage, {}, {})) as writer:
            writer.add("v_a", {"pool5": array})
        with h5py.File(path, "r") as handle:
            assert handle["v_a/pool5"].compression == compression
    with pytest.raises(ValueError, match="unknown shard codec 'zstd'.*lzf"):
        cache.ShardWriter(tmp_path / "x.h5", description(), codec="zstd")


@contextlib.contextmanager
def small_filesystem(folder, size: int):
    """A tmpfs of ``size`` bytes mounted on ``folder`` (which it hides) for the body: a real
    full disk. Skips the test where mounting is not allowed (not root)."""
    os.makedirs(folder, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_error_naming_the_shard_never_a_crash(tmp_path):
    """A shard larger than the free space of a real filesystem, at every fill level: the
    writer raises OSError ENOSPC naming the file (HDF5's chunk cache would print the failed
    eviction and crash the process when the file is closed after it), or completes and reads
    back exactly. In a child process, so that a crash is an exit status here."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from pipeline import cache
        rng = np.random.default_rng(0)
        arrays = [rng.normal(size=(8, 7, 7, 64)).astype(np.float16) for _ in range(6)]
        desc = cache.describe("features", {"x": 1})
        try:
            with cache.ShardWriter(sys.argv[1], desc) as writer:
                for index, array in enumerate(arrays):
                    writer.add(f"v{index}", {"pool5": array})
        except OSError as error:
            print(f"{error.errno} {error}")
        else:
            with cache.Shard(sys.argv[1], desc) as shard:
                assert all(np.array_equal(shard.read(f"v{i}", "pool5"), a)
                           for i, a in enumerate(arrays))
            print("complete")
    """)
    outcomes = set()
    with small_filesystem(tmp_path / "disk", 512 << 10) as disk:
        for filler in range(120 << 10, 480 << 10, 24 << 10):
            for path in disk.iterdir():
                path.unlink()
            (disk / "filler").write_bytes(bytes(filler))
            done = subprocess.run([sys.executable, "-c", script, str(disk / "shard.h5")],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (filler, done.returncode, done.stderr[-2000:])
            last = done.stdout.strip().splitlines()[-1]
            outcomes.add(last.split(" ", 1)[0])
            if last != "complete":
                assert last.startswith(f"28 [Errno 28] {disk / 'shard.h5'}: no space left"), last
    assert outcomes == {"complete", "28"}


def test_a_full_disk_met_while_copying_a_held_video_is_not_called_damage(tmp_path,
                                                                          monkeypatch):
    """ENOSPC while copying another shard's video is the disk, not a damaged source shard."""
    source = tmp_path / "old.h5"
    write(source, description())

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    with cache.ShardWriter(tmp_path / "new.h5", description()) as writer:
        monkeypatch.setattr(h5py.Group, "copy", full)
        with pytest.raises(OSError, match=r"new.h5: no space left on device") as raised:
            writer.copy_held({"v_a": source})
        monkeypatch.undo()
    assert not isinstance(raised.value, cache.CacheError)
