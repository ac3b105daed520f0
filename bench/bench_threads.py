"""VideoLSTM training steps/s of P processes side by side, each with T TensorFlow threads
([run] threads): what two workers on two cores gain from one thread per task.

    .venv/bin/python bench/bench_threads.py [--processes 2] [--threads 0 1 2]

Each process trains the CPU profile's VideoLSTM on random pool5-shaped inputs
(bench_training.py's steps); T = 0 is TensorFlow's default (one thread per core).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def one_process(threads: int, steps: int, length: int) -> None:
    """Print this process's VideoLSTM steps/s with ``threads`` TensorFlow threads."""
    from pipeline.devices import limit_threads
    limit_threads(threads)
    from bench_training import steps_per_second
    args = argparse.Namespace(hidden=32, attention=128, dense=64, batch=8, length=length,
                              grid=5, steps=steps)
    print(steps_per_second("videolstm", args), flush=True)


def side_by_side(processes: int, threads: int, steps: int, length: int) -> list[float]:
    """Steps/s of each of ``processes`` processes started together."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=HERE)
    command = [sys.executable, __file__, "--one", str(threads), "--steps", str(steps),
               "--length", str(length)]
    running = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    return [float(process.communicate()[0].split()[-1]) for process in running]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        one_process(args.one, args.steps, args.length)
        return
    print(f"VideoLSTM training, batch 8 x {args.length} frames, {args.processes} processes "
          f"side by side on {len(os.sched_getaffinity(0))} cores")
    print(f"{'threads':>8s} {'steps/s each':>24s} {'total':>8s}")
    for threads in args.threads:
        rates = side_by_side(args.processes, threads, args.steps, args.length)
        each = " / ".join(f"{rate:.2f}" for rate in rates)
        print(f"{threads or 'default':>8} {each:>24s} {sum(rates):8.2f}")


if __name__ == "__main__":
    main()
