"""bench/device_check.py's JSON as rates of the GPU stages: TV-L1 pairs/s (with [flow] backend =
tensorflow), VGG-16 frames/s per stream, and ConvALSTM / VideoLSTM training steps/s fed by the
snippet loader, so a plan estimates those stages on that GPU instead of this machine."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.plan.calibration import Rates

FORWARD_SHARE = 1 / 3
"""A forward pass's share of a training step's time (backward costs about twice the forward):
the estimate of Evaluate's and Localize's per-frame cost from a training step."""
STEP = re.compile(r"^(ConvALSTM|VideoLSTM) training, batch (\d+) x (\d+) x ")


def read(path: Path) -> dict:
    """The check's JSON; an unreadable file or one without its rows is an error naming it."""
    try:
        found = json.loads(Path(path).read_text())
        rows = found["rows"]
        if not isinstance(rows, list) or not all({"what", "value", "unit"} <= set(r)
                                                  for r in rows):
            raise KeyError("rows")
    except OSError as error:
        raise ValueError(f"--device-figures {path}: cannot read it ({error.strerror})") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"--device-figures {path}: not bench/device_check.py's JSON "
                         f"({type(error).__name__}: {error}); run bench/device_check.py "
                         "--json FILE on the GPU machine") from None
    return found


def apply(figures: dict, rates: Rates, flow_on_gpu: bool, kinds: list[str]) -> list[str]:
    """Replace ``rates``' GPU-stage seconds with the device's; returns what was replaced. Model
    kinds the check does not measure are scaled from ConvALSTM by their ratio on this machine
    when calibrated, else take ConvALSTM's figure."""
    device = figures.get("device", "the device")
    rows = figures["rows"]
    replaced = []
    pairs = [r["value"] for r in rows if r["unit"] == "pairs/s" and r["value"] > 0]
    if flow_on_gpu and pairs:
        rates.seconds["flow_pairs"] = 1 / max(pairs)
        replaced.append("flow_pairs")
    for stream in ("rgb", "flow"):
        vgg = [r["value"] for r in rows
               if r["what"].startswith(f"VGG-16 {stream} ") and r["value"] > 0]
        if vgg:
            rates.seconds[f"features_{stream}"] = 1 / vgg[0]
            replaced.append(f"features_{stream}")
            if stream == "rgb":
                rates.seconds["finetune_images"] = 1 / vgg[0]
                rates.seconds["finetune_epoch_images"] = 3 / vgg[0]
                replaced += ["finetune_images", "finetune_epoch_images"]
    measured = {}
    for index, row in enumerate(rows):
        match = STEP.match(row["what"])
        fed = rows[index + 1] if index + 1 < len(rows) else None
        if match and fed and fed["unit"] == "steps/s" and fed["value"] > 0:
            frames = int(match.group(2)) * int(match.group(3))
            measured[match.group(1)] = 1 / (fed["value"] * frames)
    if "ConvALSTM" in measured:
        base = rates.seconds.get("train_convalstm-appearance")
        for kind in kinds:
            own = {"convalstm-appearance": "ConvALSTM", "videolstm-motion": "VideoLSTM"}
            if own.get(kind) in measured:
                seconds = measured[own[kind]]
            elif base and f"train_{kind}" in rates.seconds:
                seconds = measured["ConvALSTM"] * rates.seconds[f"train_{kind}"] / base
            else:
                seconds = measured["ConvALSTM"]
            rates.seconds[f"train_{kind}"] = seconds
            rates.seconds[f"forward_{kind}"] = seconds * FORWARD_SHARE
            replaced += [f"train_{kind}", f"forward_{kind}"]
    for key in replaced:
        rates.where[key] = device
    return replaced
