"""Training-loader throughput (random 30-frame snippets/s) at paper shapes, per shard codec.

    .venv/bin/python bench/bench_loader.py [--videos 64] [--frames 60] [--batch 16]
        [--seconds 2] [--readers N] [--codecs none,lzf,gzip-1,gzip-4]

Writes synthetic feature shards in a temporary folder (per stream rgb and flow, two shards
each: pool5 7x7x512 and fc7 4096 float16 per frame, flow one frame shorter), then reads one
epoch after another through tf.data, as training does (an epoch lists every video --repeat
times: a real epoch has thousands of videos, and each epoch starts with idle readers), with

- baseline: the single generator training used before the SnippetLoader (the code of
  ``training_batches`` then, copied below: float32 snippets read one after the other by
  fancy indexing, stacked, through ``as_dataset``),
- the SnippetLoader with 1 reader process, N reader processes (N = cores), and N reader
  threads of one process (to show why processes: h5py serialises HDF5 calls),

for an appearance model (rgb pool5) and a motion model (rgb pool5 + flow pool5), and prints
the disk bytes per 1,000 frames of each array and the CPU time one reader spends per snippet.

The synthetic features are ReLU outputs: a shifted normal clipped at 0, so that --zeros of
pool5 and fc7 are 0 (default 70% and 80%: an assumption, VGG-16's ReLU features are sparse;
check a real cache's fraction and pass it); the non-zero
values' float16 mantissas are random, as real ones nearly are. Compression ratios depend on
that sparsity; read speeds much less. Snippets/s are for one host: on a machine shared with
other work they move with its load, the CPU times much less.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

POOL5, FC7 = (7, 7, 512), (4096,)


def synthetic(rng, frames: int, shape: tuple, zeros: float):
    """ReLU-like float16 features with a fraction ``zeros`` of exact zeros."""
    import numpy as np
    from statistics import NormalDist
    shift = NormalDist().inv_cdf(zeros)
    values = rng.standard_normal((frames, *shape), dtype=np.float32) - shift
    return (np.maximum(values, 0) * 0.5).astype(np.float16)


def write_shards(folder: Path, codec: str, args, pool: list) -> dict:
    """Two shards per stream, written with ``codec``: {stream: {path: description}}."""
    from pipeline import cache
    shards = {}
    for stream, frames in (("rgb", args.frames), ("flow", args.frames - 1)):
        shards[stream] = {}
        for shard in range(2):
            description = cache.describe("features", {"stream": stream, "shard": shard}, {})
            path = folder / f"{codec}-{stream}-{shard}.h5"
            with cache.ShardWriter(path, description, codec=codec) as writer:
                for video in range(shard, args.videos, 2):
                    pool5, fc7 = pool[(video + (stream == "flow")) % len(pool)]
                    writer.add(f"v{video:03d}", {"pool5": pool5[:frames], "fc7": fc7[:frames]},
                               {"label_index": video % 8})
            shards[stream][str(path)] = description
    return shards


def disk_per_1000_frames(shards: dict) -> dict[str, float]:
    """Stored bytes (chunks and their checksums) per 1,000 frames, MiB, per array."""
    import h5py
    stored, frames = {}, {}
    for paths in shards.values():
        for path in paths:
            with h5py.File(path, "r") as handle:
                for group in handle.values():
                    for name, data in group.items():
                        stored[name] = stored.get(name, 0) + data.id.get_storage_size()
                        frames[name] = frames.get(name, 0) + data.shape[0]
    return {name: stored[name] / frames[name] * 1000 / 2 ** 20 for name in stored}


def reader_cpu_ms(source, videos: list[str], length: int, snippets: int = 60) -> float:
    """CPU ms one reader spends on one snippet (all of the model's inputs), in this process."""
    import numpy as np
    from pipeline import sampling
    rng = np.random.default_rng(1)
    shapes, dtypes = source.shapes(), source.dtypes()
    out = {name: np.empty((length, *shapes[name]), dtypes[name]) for name in shapes}
    start = time.process_time()
    for _ in range(snippets):
        video = videos[int(rng.integers(len(videos)))]
        source.read_into(video, sampling.random_snippet(source.length(video), length, rng), out)
    return (time.process_time() - start) / snippets * 1000


def previous_training_batches(source, videos, labels, batch_size, length, rng):
    """``training_batches`` (pipeline.training.loader) as it was before the SnippetLoader (the
    baseline)."""
    import numpy as np
    from pipeline import sampling

    def frames(video_id, indices):
        return {name: source._where[stream][video_id].read(video_id, layer, indices)
                .astype(np.float32) for name, stream, layer in source._streams()}

    def video_length(video_id):
        return min(source._where[stream][video_id].length(video_id, layer)
                   for _, stream, layer in source._streams())

    order = rng.permutation(len(videos))
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        snippets = [frames(videos[i], sampling.random_snippet(video_length(videos[i]), length,
                                                              rng)) for i in chosen]
        inputs = {name: np.stack([s[name] for s in snippets]) for name in snippets[0]}
        targets = np.repeat(np.asarray([labels[i] for i in chosen])[:, None], length, axis=1)
        yield inputs, {"scores": targets}


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds so far of this process (all its threads) and of the given processes."""
    total = time.process_time()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def rate(make_dataset, seconds: float, pids: list[int] = ()) -> tuple[float, float, float]:
    """(snippets/s, main-process CPU ms per snippet, cores busy: CPU seconds of this process and
    the readers per second) over whole epochs after a warm-up batch, for at least
    ``seconds``."""
    epoch, snippets, started = 0, 0, None
    while True:
        for inputs, _ in make_dataset(epoch):
            if started is None:  # the first batch warms up (readers, tf.data)
                started, main, cpu = time.perf_counter(), time.process_time(), cpu_seconds(pids)
                continue
            snippets += int(inputs["features"].shape[0])
        epoch += 1
        if started is not None and time.perf_counter() - started >= seconds and snippets:
            elapsed = time.perf_counter() - started
            return (snippets / elapsed, (time.process_time() - main) / snippets * 1000,
                    (cpu_seconds(pids) - cpu) / elapsed)


def measure(shards: dict, inputs, args) -> dict:
    import numpy as np
    from pipeline.training.loader import SnippetLoader, as_dataset
    from pipeline.training.source import FeatureSource
    results = {}
    with FeatureSource(shards, inputs) as source:
        videos = sorted(source.videos_cached()) * args.repeat
        labels = [int(v[1:]) % 8 for v in videos]
        shapes = source.shapes()
        results["cpu"] = reader_cpu_ms(source, videos, args.length)

        def baseline(epoch):
            def batches():
                return previous_training_batches(source, videos, labels, args.batch,
                                                 args.length,
                                                 np.random.default_rng([0, epoch]))
            return as_dataset(batches, shapes, args.length, math.ceil(len(videos) / args.batch))
        results["baseline"] = rate(baseline, args.seconds)
        for key, readers, threads in (("1", 1, False), ("N", args.readers, False),
                                      ("Nt", args.readers, True)):
            with SnippetLoader(source, args.batch, args.length, readers,
                               threads=threads) as loader:
                pids = [] if threads else [worker.pid for worker in loader._workers]
                results[key] = rate(lambda epoch: loader.dataset(videos, labels, [0, epoch]),
                                    args.seconds, pids)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=4,
                        help="an epoch lists each video this many times (longer epochs)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--readers", type=int, default=0, help="N; 0: one per core")
    parser.add_argument("--codecs", default="none,lzf,gzip-1,gzip-4")
    parser.add_argument("--zeros", default="0.7,0.8", help="zero fraction of pool5,fc7")
    args = parser.parse_args()
    import numpy as np
    from pipeline.training.loader import reader_count
    from pipeline.training.source import ModelInputs
    args.readers = reader_count(args.readers)
    zeros = [float(z) for z in args.zeros.split(",")]
    rng = np.random.default_rng(0)
    pool = [(synthetic(rng, args.frames, POOL5, zeros[0]), synthetic(rng, args.frames, FC7,
                                                                     zeros[1]))
            for _ in range(16)]
    models = {"appearance": ModelInputs("rgb", "pool5", False),
              "motion": ModelInputs("rgb", "pool5", True)}
    disk, speed = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as folder:
        for codec in args.codecs.split(","):
            shards = write_shards(Path(folder), codec, args, pool)
            disk[codec] = disk_per_1000_frames(shards)
            for model, inputs in models.items():
                speed[codec, model] = measure(shards, inputs, args)
            for paths in shards.values():
                for path in paths:
                    os.remove(path)
    n = args.readers
    print(f"loader: random {args.length}-frame snippets of {args.videos} videos x "
          f"{args.frames} frames, pool5 {'x'.join(map(str, POOL5))} float16, batch "
          f"{args.batch}, through tf.data; {os.cpu_count()} cores, N = {n}; zeros pool5 "
          f"{zeros[0]:.0%}, fc7 {zeros[1]:.0%}")
    print(f"\ndisk per 1,000 frames (MiB, chunks + checksums)\n{'codec':8s} {'pool5':>7s} "
          f"{'fc7':>6s}")
    for codec, sizes in disk.items():
        print(f"{codec:8s} {sizes['pool5']:7.1f} {sizes['fc7']:6.2f}")
    today = {model: speed.get(("gzip-4", model), {}).get("baseline", (None,))[0]
             for model in models}
    print("\nsnippets/s (a motion snippet reads two streams)")
    print(f"{'codec':8s} {'model':10s} {'baseline':>8s} {'1 reader':>8s} {f'{n} readers':>10s} "
          f"{f'{n} threads':>10s} {'xbase':>6s} {'xtoday':>6s}")
    for (codec, model), r in speed.items():
        base, parallel = r["baseline"][0], r["N"][0]
        versus_today = f"{parallel / today[model]:6.2f}" if today[model] else f"{'-':>6s}"
        print(f"{codec:8s} {model:10s} {base:8.0f} {r['1'][0]:8.0f} {parallel:10.0f} "
              f"{r['Nt'][0]:10.0f} {parallel / base:6.2f} {versus_today}")
    print("xbase: N readers / baseline of the same codec; xtoday: N readers / baseline on gzip-4 "
          "(the codec shards had before)")
    print(f"\nCPU (the machine's load does not change these much)\n{'codec':8s} {'model':10s} "
          f"{'reader':>7s} {'main':>7s} {'cores':>6s} {'/core':>6s} {'cores':>6s} {'/core':>6s} "
          f"{'cores':>6s} {'/core':>6s}")
    print(f"{'':19s} {'ms/snip':>7s} {'ms/snip':>7s} {'baseline':>13s} {f'{n} readers':>13s} "
          f"{f'{n} threads':>13s}")
    for (codec, model), r in speed.items():
        (base, _, base_cores), (parallel, main, cores) = r["baseline"], r["N"]
        threads, _, thread_cores = r["Nt"]
        print(f"{codec:8s} {model:10s} {r['cpu']:7.2f} {main:7.2f} {base_cores:6.2f} "
              f"{base / base_cores:6.0f} {cores:6.2f} {parallel / cores:6.0f} "
              f"{thread_cores:6.2f} {threads / thread_cores:6.0f}")
    print("reader: CPU ms one reader spends per snippet; main: CPU ms per snippet of the training "
          "process (copy, tf.data, cast) with N readers;\ncores: CPU seconds per second of the "
          "training process and its readers (below the cores asked for where other work shares "
          "the machine); /core: snippets/s per core busy")


if __name__ == "__main__":
    main()
