"""SIGTERM as an exception, so that a stopped run cleans up as a failed one does.

timeout, SLURM and Kubernetes stop a run with SIGTERM, whose default action ends the process
on the spot: its temporary outputs stay behind and its flow workers, orphaned, block on a pipe
write. Raised as `Terminated` instead, the stop unwinds the running task like any error:
`with` blocks remove temporary outputs and stop worker pools (pipeline.flow.tvl1.FlowPool).
"""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM). A KeyboardInterrupt, so that Luigi stops as on
    Ctrl-C: it re-raises KeyboardInterrupt from a task's run, where it would record any other
    exception as a failed task and go on with the next one."""


def _raise_terminated(signum: int, frame) -> None:
    """The SIGTERM handler: ignore further SIGTERMs, so that a second one cannot interrupt the
    cleanup that the first one starts (SIGKILL still ends the process), and raise Terminated."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(f"stopped by {signal.Signals(signum).name}")


def install() -> None:
    """Raise Terminated on the next SIGTERM, in this process and in processes forked from it
    (Luigi's workers); call it from the main thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)
