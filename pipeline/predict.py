"""Applying a trained model to a new video as its frames arrive (paper Sec. 4: "it does not need
to see the whole video at once, frames are processed as they are received").

Each frame goes through the stream's VGG-16 (and TV-L1 flow when the model uses the flow stream
or motion attention), one step of the recurrent model, and the saliency-based box choice of
Eq. 16-17 chained to the previous frame's box. The video's class ranking is the tube score (frame
scores averaged); the tube is LOWESS-smoothed once the video has ended.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import keras
import numpy as np
import pandas as pd

from models import vgg16
from models.registry import ARCHITECTURES, ATTENTIONS, FrameStepper
from pipeline import features, localization
from pipeline.datasets.ucf101 import read_class_index
from pipeline.flow import TVL1Params, quantize, tvl1
from pipeline.training import MAP_LAYER, VECTOR_LAYER, ModelInputs
from pipeline.video import VideoError, iter_frames

STREAMS = ("rgb", "flow")
MODEL_FILE = "model.keras"
BOX_COLUMNS = ["x1", "y1", "x2", "y2"]
SMOOTH_COLUMNS = [f"smooth_{c}" for c in BOX_COLUMNS]


@dataclass(frozen=True)
class FrameResult:
    """One frame's output: class scores (C,), attention A_t (N, N) or None for a model that does
    not attend, and the chained box (x1, y1, x2, y2) in frame pixels (NaN while no frame so far
    had a salient region)."""

    index: int
    scores: np.ndarray
    attention: np.ndarray | None
    box: np.ndarray


def model_file(path: str | os.PathLike) -> Path:
    """A saved network: the .keras file itself, or the folder holding `model.keras`."""
    path = Path(path)
    found = path / MODEL_FILE if path.is_dir() else path
    if not found.is_file():
        raise FileNotFoundError(f"{path}: no saved model here (expected a .keras file or a "
                                f"folder holding {MODEL_FILE})")
    return found


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names in score order: UCF101's classInd.txt ("1 ApplyEyeMakeup") or one per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class list does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: class list is empty")
    if all(len(line.split()) == 2 and line.split()[0].isdigit() for line in lines):
        return read_class_index(path)
    if len(set(lines)) != len(lines):
        raise ValueError(f"{path}: class list repeats a name")
    return lines


class Predictor:
    """A trained model with the convnets that feed it, applied to frames as they come.

    model_path: the trained recurrent model (.keras). rgb_convnet / flow_convnet: the saved
    stream networks (.keras); the rgb one is needed for stream "rgb", the flow one whenever the
    model reads flow (stream "flow" or motion attention). Each network's input size is read from
    the network. flow_params: TV-L1 settings and quantization bound, as used for the cached flow.
    theta, sigma: saliency threshold (Eq. 16) and Gaussian sigma in frame pixels; frac: the
    LOWESS span. precision: dtype policy of the convnets; dtype: the feature cache's storage
    dtype, through which features are rounded exactly as the model saw them in training.
    """

    def __init__(self, model_path, rgb_convnet=None, flow_convnet=None, *, stream: str,
                 arch: str, attention: str = "appearance", flow_params: TVL1Params = TVL1Params(),
                 theta: float = 100.0, sigma: float = 8.0, frac: float = 0.3,
                 precision: str = "float32", dtype: str = "float16"):
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if not 0 < theta <= localization.SALIENCY_MAX:
            raise ValueError(f"theta must be in (0, {localization.SALIENCY_MAX:g}], got {theta}")
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0 pixels, got {sigma}")
        if not 0 < frac <= 1:
            raise ValueError(f"frac must be in (0, 1], got {frac}")
        self.inputs = ModelInputs.of(arch, stream, attention)
        self.needs_flow = stream == "flow" or self.inputs.motion
        self.flow_params, self.theta, self.sigma, self.frac = flow_params, theta, sigma, frac
        self.dtype = dtype
        convnets = {"rgb": rgb_convnet if stream == "rgb" else None,
                    "flow": flow_convnet if self.needs_flow else None}
        for name, needed in (("rgb", stream == "rgb"), ("flow", self.needs_flow)):
            if needed and convnets[name] is None:
                raise ValueError(f"the {name} convnet is needed by this model but was not given")
        path = model_file(model_path)
        self.model = keras.models.load_model(path)
        self.stepper = FrameStepper(self.model)
        self.motion_layer = (VECTOR_LAYER if self.stepper.motion_shape is not None
                             and len(self.stepper.motion_shape) == 1 else MAP_LAYER)
        if self.stepper.motion != self.inputs.motion:
            raise ValueError(f"{path}: the model {'uses' if self.stepper.motion else 'lacks'} "
                             f"motion attention, but arch={arch!r} attention={attention!r} "
                             f"{'does not' if self.stepper.motion else 'does'}")
        self.extractors = {name: self._extractor(convnet, name, precision)
                           for name, convnet in convnets.items() if convnet is not None}
        self._check_shape(path, "features", stream, self.inputs.layer)
        if self.inputs.motion:
            self._check_shape(path, "motion", "flow", self.motion_layer)

    @staticmethod
    def _extractor(path, stream: str, precision: str) -> keras.Model:
        found = model_file(path)
        extractor = vgg16.load_extractor(str(found), precision)
        channels = extractor.inputs[0].shape[-1]
        if channels != vgg16.STREAM_CHANNELS[stream]:
            raise ValueError(f"{found}: a network with {channels}-channel input is not the "
                             f"{stream} stream's")
        return extractor

    def _check_shape(self, path: Path, name: str, stream: str, layer: str) -> None:
        extractor = self.extractors[stream]
        made = tuple(extractor.outputs[0 if layer == MAP_LAYER else 1].shape[1:])
        wanted = tuple(self.model.input[name].shape[2:])
        if made != wanted:
            raise ValueError(f"{path}: model input {name!r} is per frame {wanted}, but the "
                             f"{stream} convnet's {layer} is {made}")

    def _features(self, stream: str, image: np.ndarray) -> dict[str, np.ndarray]:
        """pool5 (N, N, 512) and fc7 (4096) of one RGB frame or quantized flow image, float32
        after rounding through the cache dtype."""
        extractor = self.extractors[stream]
        pool5, fc7 = features.extract(extractor, [image], stream, extractor.inputs[0].shape[1], 1,
                                      self.dtype)
        return {"pool5": pool5[0].astype(np.float32), "fc7": fc7[0].astype(np.float32)}

    def _step(self, index: int, frame: np.ndarray, flow_image: np.ndarray | None, states: list,
              previous_box: np.ndarray) -> tuple[FrameResult, list]:
        """One frame through convnets, model and box chaining (Eq. 16-17)."""
        flow = self._features("flow", flow_image) if flow_image is not None else None
        own = flow if self.inputs.stream == "flow" else self._features("rgb", frame)
        inputs_t = {"features": own[self.inputs.layer][None]}
        if self.inputs.motion:
            inputs_t["motion"] = flow[self.motion_layer][None]
        scores, attention, states = self.stepper.step(inputs_t, states)
        scores = keras.ops.convert_to_numpy(scores)[0].astype(np.float64)
        box = previous_box
        if attention is not None:
            attention = keras.ops.convert_to_numpy(attention)[0].astype(np.float32)
            saliency = localization.saliency_map(attention, frame.shape[:2], self.sigma)
            candidates = localization.candidate_boxes(saliency, self.theta)
            history = [] if np.isnan(previous_box).any() else [previous_box[None]]
            box = localization.chain_boxes(history + [candidates])[-1]
        return FrameResult(index, scores, attention, box), states

    def frames(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]:
        """Results frame by frame as RGB uint8 (H, W, 3) frames arrive.

        When the model reads flow, frame t's result comes once frame t+1 has arrived (flow t is
        between them) and the last frame, which has no flow, gives none: the cached pipeline
        likewise uses min(rgb, flow) frames. Only the previous frame (and, with
        use_initial_flow, its flow) is kept between frames.
        """
        states = self.stepper.initial_states(1)
        box = np.full(4, np.nan)
        previous = previous_gray = flow = None
        for index, frame in enumerate(frames):
            frame = np.array(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"frame {index}: expected RGB uint8 (H, W, 3), got "
                                 f"{frame.dtype} {frame.shape}")
            if not self.needs_flow:
                result, states = self._step(index, frame, None, states, box)
                box = result.box
                yield result
                continue
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if previous is not None:
                flow = tvl1(previous_gray, gray, self.flow_params, initial_flow=flow)
                result, states = self._step(index - 1, previous, quantize(
                    flow, self.flow_params.bound), states, box)
                box = result.box
                yield result
            previous, previous_gray = frame, gray


def _write_replacing(path: Path, write) -> None:
    """Write through `write(temporary path)` and rename, so a killed run leaves no file that
    looks complete."""
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_overlay(video_path, path: Path, attention: list, boxes: np.ndarray, sigma: float,
                   fps: float) -> None:
    """The overlay video (MJPG AVI), decoded and written one frame at a time; frames beyond
    the results (the last one for flow models) are left out, a model without attention shows
    no saliency. Odd sizes are padded by one pixel, which MJPG needs."""
    from pipeline.figures import overlay_frame
    writer = None
    try:
        for index, frame in zip(range(len(boxes)), iter_frames(video_path)):
            saliency = (np.zeros(frame.shape[:2], np.float32) if attention[index] is None else
                        localization.saliency_map(attention[index], frame.shape[:2], sigma))
            image = overlay_frame(frame, saliency, boxes[index])
            height, width = image.shape[:2]
            image = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps),
                                         (image.shape[1], image.shape[0]))
                if not writer.isOpened():
                    raise VideoError(f"{path}: cannot open a video writer")
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()


def check_fps(fps: float) -> None:
    """The overlay video's frame rate must be a finite number > 0; checked before any work, so
    that a bad --fps does not fail after the ranking and the tube are written."""
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"--fps must be a frame rate > 0, got {fps}")


def predict_video(video_path, predictor: Predictor, out_dir, class_names: Sequence[str],
                  fps: float = 25) -> dict:
    """Apply `predictor` to a video and write its results to `out_dir`.

    ranking.csv: every class with its tube score (frame scores averaged, Sec. 4), best first.
    tube.csv: per frame the chained box (Eq. 17) and its LOWESS-smoothed version, clipped to
    the frame. overlay.avi: the frames with saliency and smoothed box. Smoothing needs the whole
    box sequence, so the overlay is made in a second decoding pass over the video, again one
    frame at a time, from the kept per-frame attention maps (N x N each) rather than a second
    run of the model.
    Returns {"top_class", "score", "frames"}.
    """
    check_fps(fps)
    n_classes = predictor.model.output["scores"].shape[-1]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for a model of {n_classes} classes")
    scores, attention, boxes = [], [], []
    for result in predictor.frames(iter_frames(video_path)):
        scores.append(result.scores)
        attention.append(result.attention)
        boxes.append(result.box)
    if not scores:
        raise VideoError(f"{video_path}: too short: this model needs at least 2 frames (flow)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tube_score = localization.tube_scores(np.stack(scores))
    order = np.argsort(-tube_score, kind="stable")
    ranking = pd.DataFrame({"class": [class_names[i] for i in order], "score": tube_score[order]})
    _write_replacing(out_dir / "ranking.csv", lambda p: ranking.to_csv(p, index=False))
    raw = np.stack(boxes)
    frame_hw = next(iter_frames(video_path)).shape[:2]
    smooth = localization.smooth_boxes(raw, predictor.frac, frame_hw)
    tube = pd.concat([pd.DataFrame({"frame": np.arange(len(raw))}),
                      pd.DataFrame(raw, columns=BOX_COLUMNS),
                      pd.DataFrame(smooth, columns=SMOOTH_COLUMNS)], axis=1)
    _write_replacing(out_dir / "tube.csv", lambda p: tube.to_csv(p, index=False))
    _write_replacing(out_dir / "overlay.avi", lambda p: _write_overlay(
        video_path, p, attention, smooth, predictor.sigma, fps))
    return {"top_class": ranking["class"].iloc[0], "score": float(ranking["score"].iloc[0]),
            "frames": len(raw)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.predict",
        description="Apply a trained VideoLSTM to a video, frame by frame: class ranking, "
                    "action tube and an overlay video.")
    parser.add_argument("video")
    parser.add_argument("--model", required=True, help="trained model folder (or .keras file)")
    parser.add_argument("--rgb-convnet", help="rgb VGG-16 folder (needed for --stream rgb)")
    parser.add_argument("--flow-convnet",
                        help="flow VGG-16 folder (needed for --stream flow or motion attention)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="videolstm")
    parser.add_argument("--stream", choices=STREAMS, default="rgb")
    parser.add_argument("--attention", choices=ATTENTIONS, default="appearance")
    parser.add_argument("--classes", required=True,
                        help="classInd.txt or a file with one class name per line")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--theta", type=float, default=100.0, help="saliency threshold (Eq. 16)")
    parser.add_argument("--sigma", type=float, default=8.0, help="Gaussian sigma, pixels")
    parser.add_argument("--frac", type=float, default=0.3, help="LOWESS span (fraction)")
    parser.add_argument("--bound", type=float, default=20.0, help="flow clip bound, pixels")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                        help="storage dtype of the features the model was trained on")
    parser.add_argument("--fps", type=float, default=25.0, help="overlay video frame rate")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point; a bad input ends with one line naming it and exit status 1."""
    args = _parser().parse_args(argv)
    try:
        check_fps(args.fps)
        if not Path(args.video).is_file():
            raise VideoError(f"{args.video}: video file does not exist")
        class_names = read_class_names(args.classes)
        predictor = Predictor(
            args.model, args.rgb_convnet, args.flow_convnet, stream=args.stream, arch=args.arch,
            attention=args.attention, flow_params=TVL1Params(bound=args.bound),
            theta=args.theta, sigma=args.sigma, frac=args.frac, precision=args.precision,
            dtype=args.dtype)
        summary = predict_video(args.video, predictor, args.out, class_names, args.fps)
    except (OSError, ValueError) as error:
        print(f"{_parser().prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{summary['top_class']} (score {summary['score']:.4f}) over {summary['frames']} "
          f"frames; results in {args.out}")


if __name__ == "__main__":
    main()
