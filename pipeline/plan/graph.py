"""The task graph a run would execute, read from the Luigi tasks' own requires() without running
or completing anything: each task as a plain Node."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    """One Luigi task: its family, parameters, the ids of the tasks it requires and whether it
    holds a device (it runs TensorFlow)."""

    id: str
    family: str
    params: dict = field(hash=False)
    requires: tuple[str, ...]
    device: bool


def walk(root) -> list[Node]:
    """Every task reachable from ``root`` through requires(), dependencies first."""
    import luigi.task
    nodes: dict[str, Node] = {}
    order: list[str] = []

    def visit(task) -> None:
        if task.task_id in nodes:
            return
        required = luigi.task.flatten(task.requires())
        for child in required:
            visit(child)
        uses_device = getattr(task, "uses_device", None)
        nodes[task.task_id] = Node(task.task_id, task.task_family, dict(task.param_kwargs),
                                   tuple(dict.fromkeys(t.task_id for t in required)),
                                   bool(uses_device and uses_device()))
        order.append(task.task_id)

    visit(root)
    return [nodes[i] for i in order]


def families(nodes: list[Node]) -> dict[str, int]:
    """Tasks per task family, in the order a family first appears (dependencies first)."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.family] = counts.get(node.family, 0) + 1
    return counts
