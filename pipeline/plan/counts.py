"""What each task of the graph processes, from the videos' frame counts and the settings: the
items a user reads (videos, frames, pairs, steps, segments) and the work that its time is
estimated from (units whose cost calibration measures)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from pipeline import sharding
from pipeline.plan.graph import Node
from pipeline.plan.settings import Settings
from pipeline.plan.videos import all_videos
from pipeline.scoring import CURVES_REPLICATE

HELD_OUT_BATCH = 32
"""Snippets per call of TrainModel's per-epoch held-out accuracy (training.loop)."""


@dataclass(frozen=True)
class Counted:
    """One task's items (shown) and work (rate key -> units, for its time)."""

    items: dict
    work: dict


def model_kind(arch: str, attention: str) -> str:
    """A model's cost class: its architecture and whether it reads the flow stream too."""
    motion = arch == "videolstm" or attention == "motion"
    return f"{arch}-{'motion' if motion else 'appearance'}"


def shard_of(videos: pd.DataFrame, shard: int, shards: int) -> pd.DataFrame:
    """The videos of one shard (pipeline.sharding's hash of the id)."""
    return videos[[sharding.shard_index(v, shards) == shard for v in videos["video_id"]]]


def stream_frames(videos: pd.DataFrame, stream: str) -> int:
    """Frames a stream has of ``videos``: every frame for rgb, one per adjacent pair for flow."""
    frames = videos["n_frames"].clip(lower=0)
    return int((frames if stream == "rgb" else (frames - 1).clip(lower=0)).sum())


def count(node: Node, listings: dict[str, pd.DataFrame], settings: Settings) -> Counted:
    """Items and work of one task; families that do little per item have neither."""
    p = node.params
    family = node.family
    if family == "GenerateSynthetic":
        videos = all_videos(listings["synthetic"])
        return Counted({"videos": len(videos), "frames": stream_frames(videos, "rgb")},
                       {"generate_frames": stream_frames(videos, "rgb")})
    if family == "ReproducePaper":
        return Counted({}, {"tensorflow": 1})
    table = listings[p["dataset"]]
    everything = all_videos(table)
    if family == "Manifest":
        split = table[table["split_number"] == p["split"]]
        annotated = split[split["tubes"]]
        return Counted({"videos": len(split)},
                       {"probe_videos": len(split) - len(annotated),
                        "decode_frames": stream_frames(annotated, "rgb")})
    if family == "ComputeFlow":
        videos = shard_of(everything, p["shard"], settings.shards)
        pairs = stream_frames(videos, "flow")
        return Counted({"videos": len(videos), "frames": stream_frames(videos, "rgb"),
                        "pairs": pairs}, {"flow_pairs": pairs, "flow_start": 1})
    if family == "FinetuneConvNet":
        train = everything[everything["role"] == "train"]
        per_video = train["n_frames"] - (p["stream"] == "flow")
        images = int(per_video.clip(lower=0, upper=settings.finetune_frames).sum())
        epochs = settings.finetune_epochs
        steps = epochs * math.ceil(images / settings.convnet_batch)
        return Counted({"videos": len(train), "frames": images, "steps": steps},
                       {"finetune_images": images if epochs else 0,
                        "finetune_epoch_images": images * epochs,
                        "finetune_start": 1 if epochs else 0, "tensorflow": 1})
    if family == "ExtractFeatures":
        videos = shard_of(everything, p["shard"], settings.shards)
        frames = stream_frames(videos, p["stream"])
        return Counted({"videos": len(videos), "frames": frames},
                       {f"features_{p['stream']}": frames, f"features_start_{p['stream']}": 1,
                        "tensorflow": 1})
    split = table[table["split_number"] == p["split"]]
    train, test = split[split["role"] == "train"], split[split["role"] == "test"]
    kind = model_kind(p.get("arch", "videolstm"), p.get("attention", "motion"))
    if family == "TrainModel":
        steps = settings.epochs * math.ceil(len(train) / settings.batch_size)
        curves = p.get("replicate", CURVES_REPLICATE) == CURVES_REPLICATE
        held_out = {f"forward_{kind}": settings.epochs * len(test) * settings.snippet,
                    f"forward_call_{kind}": settings.epochs * math.ceil(
                        len(test) / HELD_OUT_BATCH),
                    f"forward_start_{kind}": 1} if curves else {}
        return Counted({"videos": len(train), "steps": steps},
                       {f"train_{kind}": settings.epochs * len(train) * settings.snippet,
                        **held_out, f"epoch_{kind}": settings.epochs,
                        f"train_start_{kind}": 1, "loader_start": 1, "tensorflow": 1})
    if family == "Evaluate":
        segments = len(test) * settings.segments
        return Counted({"videos": len(test), "segments": segments},
                       {f"forward_{kind}": segments * settings.length,
                        f"forward_call_{kind}": len(test),
                        f"forward_start_{kind}": 1, "tensorflow": 1})
    localized = test[test["tubes"]]
    if family == "Localize":
        return Counted({"videos": len(localized), "frames": stream_frames(localized, "rgb")},
                       {f"forward_{kind}": stream_frames(localized, "rgb"),
                        f"forward_call_{kind}": len(localized),
                        f"forward_start_{kind}": 1, "tensorflow": 1})
    if family == "MotionSaliencyTubes":
        return Counted({"videos": len(localized), "frames": stream_frames(localized, "rgb")}, {})
    return Counted({}, {})
