"""Applying a trained model to a new video as its frames arrive (paper Sec. 4: "it does not need
to see the whole video at once, frames are processed as they are received").

Each frame is resized to the frame size the model's inputs were made at, goes through the
stream's VGG-16 (and TV-L1 flow when the model uses the flow stream or motion attention), one
step of the recurrent model, and the saliency-based box choice of Eq. 16-17 chained to the
previous frame's box, in the original frame's pixels. The video's class ranking is the tube
score (frame scores averaged); the tube is LOWESS-smoothed once the video has ended.

A trained model folder describes itself (model.json, written by TrainModel: `ModelRecord`), so

    python -m pipeline.predict VIDEO --model MODEL_FOLDER --out OUT

(or the console script ``videolstm-predict``) computes exactly the inputs the model was trained
on: the recorded frame size, TV-L1 settings, image size, precision and feature dtype, through
the recorded convnets, whose weights must have the recorded checksums.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import cv2
import keras
import numpy as np
import pandas as pd

from models import vgg16
from models.registry import ARCHITECTURES, ATTENTIONS, FrameStepper
from pipeline import cache, features, localization, model_files
from pipeline.flow.tvl1 import TVL1Params, flow_gray, quantize, tvl1
from pipeline.model_files import MODEL_FILE, RECORD_FILE
from pipeline.training.source import MAP_LAYER, VECTOR_LAYER, ModelInputs
from pipeline.video import (FrameSize, VideoError, format_frame_size, header_frames,
                            iter_frames, parse_frame_size, resize_frame, shortfall)

STREAMS = ("rgb", "flow")
PRECISIONS = ("float32", "mixed_bfloat16")
DTYPES = ("float16", "float32")
RECORD_KEYS = ("arch", "attention", "stream", "classes", "inputs", "image_size", "frame_size",
               "flow", "convnets", "precision", "dtype")
"""What model.json holds for predict, beside TrainModel's description, videos and seconds."""
TOP = 5
"""Classes printed by the command line, best first."""
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


@dataclass(frozen=True)
class ConvnetRef:
    """A stream's convnet as training found it: its folder and its weights' sha256 (the
    checksum of convnet.json, `cache.array_checksum` of the network's weights)."""

    path: str
    weights_sha256: str


@dataclass(frozen=True)
class ModelRecord:
    """What a trained model was trained on, so that predict computes the same inputs: written
    by TrainModel into the model folder's model.json and read back by `read_model_record`.

    arch, attention ("motion" whenever the model reads flow attention, e.g. VideoLSTM), stream;
    classes: names in score order; inputs: the cached layers the model reads (features, and
    motion for motion attention); image_size: the convnets' input size; frame_size: (width,
    height) frames were stretched to before flow and the rgb convnet; flow: the TV-L1 settings
    and bound (None when the model reads no flow); convnets: per stream the model reads, where
    its convnet was and its weights' checksum; precision, dtype: of the feature extraction.
    """

    arch: str
    attention: str
    stream: str
    classes: tuple[str, ...]
    inputs: ModelInputs
    image_size: int
    frame_size: FrameSize
    flow: TVL1Params | None
    convnets: Mapping[str, ConvnetRef] = field(default_factory=dict)
    precision: str = "float32"
    dtype: str = "float16"

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        object.__setattr__(self, "convnets", {s: self.convnets[s] for s in sorted(self.convnets)})
        for name, value, allowed in (("stream", self.stream, STREAMS),
                                     ("arch", self.arch, ARCHITECTURES),
                                     ("attention", self.attention, ATTENTIONS),
                                     ("precision", self.precision, PRECISIONS),
                                     ("dtype", self.dtype, DTYPES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct names, got {list(self.classes)}")
        if self.inputs.stream != self.stream or self.inputs.motion != (self.attention == "motion"):
            raise ValueError(f"inputs {self.inputs} do not match stream={self.stream!r} "
                             f"attention={self.attention!r}")
        parse_frame_size(format_frame_size(self.frame_size))
        if not (isinstance(self.image_size, int) and self.image_size >= 32):
            raise ValueError(f"image_size must be an integer >= 32, got {self.image_size!r}")
        if (self.flow is not None) != self.reads_flow:
            raise ValueError("flow settings must be given exactly when the model reads flow")
        wanted = sorted({self.stream} | ({"flow"} if self.reads_flow else set()))
        if sorted(self.convnets) != wanted:
            raise ValueError(f"convnets of streams {wanted} are needed, "
                             f"got {sorted(self.convnets)}")

    @property
    def reads_flow(self) -> bool:
        return self.stream == "flow" or self.inputs.motion

    def as_json(self) -> dict:
        """model.json's predict part (keys RECORD_KEYS)."""
        return {"arch": self.arch, "attention": self.attention, "stream": self.stream,
                "classes": list(self.classes),
                "inputs": {"features": self.inputs.layer,
                           "motion": self.inputs.motion_layer if self.inputs.motion else None},
                "image_size": self.image_size, "frame_size": format_frame_size(self.frame_size),
                "flow": None if self.flow is None else self.flow.as_dict(),
                "convnets": {s: {"path": ref.path, "weights_sha256": ref.weights_sha256}
                             for s, ref in self.convnets.items()},
                "precision": self.precision, "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: Mapping, where: str = RECORD_FILE) -> "ModelRecord":
        """The record in a parsed model.json; a file without it (written before models
        described themselves) or with a bad value is refused, naming ``where``."""
        missing = [key for key in RECORD_KEYS if key not in data]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)}: the model was trained before "
                             "model folders described themselves; retrain it (luigi --module "
                             "tasks TrainModel ...) to apply it with predict")
        try:
            inputs = data["inputs"]
            return cls(
                arch=data["arch"], attention=data["attention"], stream=data["stream"],
                classes=data["classes"],
                inputs=ModelInputs(data["stream"], inputs["features"], inputs["motion"] is not None,
                                   inputs["motion"] or MAP_LAYER),
                image_size=data["image_size"], frame_size=parse_frame_size(data["frame_size"]),
                flow=None if data["flow"] is None else TVL1Params(**data["flow"]),
                convnets={s: ConvnetRef(str(ref["path"]), str(ref["weights_sha256"]))
                          for s, ref in data["convnets"].items()},
                precision=data["precision"], dtype=data["dtype"])
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"{where}: not a valid model record: {error}") from None


def model_folder(path: str | os.PathLike) -> Path:
    """The trained model's folder: the folder itself, or the one holding a given .keras file."""
    path = Path(path)
    return path if path.is_dir() or path.suffix != ".keras" else path.parent


def read_model_record(path: str | os.PathLike) -> ModelRecord:
    """The `ModelRecord` of a trained model folder (model.json); a clear error when the file is
    missing, unreadable or from before models described themselves, or when the folder is not
    whole (`model_files.check`: model.keras not the one model.json records, or model.json's
    record edited)."""
    folder = model_folder(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder")
    record = folder / RECORD_FILE
    if not record.is_file():
        raise FileNotFoundError(
            f"{record} does not exist: predict reads the model's architecture, classes, frame "
            f"size, flow settings and convnets from it (TrainModel writes it); retrain the "
            f"model, or give --model the folder TrainModel made")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{record}: not readable JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{record}: not a model record (a JSON object)")
    model_files.check(folder, data)
    return ModelRecord.from_json(data, str(record))


def find_convnets(record: ModelRecord, model: str | os.PathLike,
                  convnets: str | os.PathLike | None = None) -> dict[str, Path]:
    """Each recorded convnet's folder: where training found it, or, with ``convnets`` (a
    model copied to another machine), the folder of the same name inside ``convnets``."""
    where = model_folder(model) / RECORD_FILE
    found = {}
    for stream, ref in record.convnets.items():
        recorded = Path(ref.path)
        path = recorded if convnets is None else Path(convnets) / recorded.name
        if not (path / MODEL_FILE).is_file():
            if convnets is None:
                raise FileNotFoundError(
                    f"{recorded}: the {stream} convnet the model was trained on (as {where} "
                    f"records) is not there; give --convnets FOLDER, a folder holding "
                    f"{recorded.name}")
            raise FileNotFoundError(f"{path}: no {stream} convnet here ({MODEL_FILE} missing; "
                                    f"{where} records {recorded.name})")
        found[stream] = path
    return found


def check_convnet(path: str | os.PathLike, stream: str, ref: ConvnetRef, where: str) -> None:
    """Refuse a convnet whose weights are not those the model was trained on."""
    found = model_file(path)
    saved = keras.models.load_model(found, compile=False)
    actual = cache.array_checksum(saved.get_weights())
    if actual != ref.weights_sha256:
        raise ValueError(f"{found}: this {stream} convnet's weights (sha256 {actual}) are not "
                         f"those the model was trained on (sha256 {ref.weights_sha256}, of "
                         f"{ref.path}, as {where} records)")


def model_file(path: str | os.PathLike) -> Path:
    """A saved network: the .keras file itself, or the folder holding `model.keras`."""
    path = Path(path)
    found = path / MODEL_FILE if path.is_dir() else path
    if not found.is_file():
        raise FileNotFoundError(f"{path}: no saved model here (expected a .keras file or a "
                                f"folder holding {MODEL_FILE})")
    if not zipfile.is_zipfile(found):
        raise ValueError(f"{found}: damaged, not a readable .keras archive; restore it or "
                         "train it again")
    return found


class Predictor:
    """A trained model with the convnets that feed it, applied to frames as they come.

    `from_folder` builds one from a trained model folder alone (its model.json). Here every
    setting is given: model_path: the trained recurrent model (.keras). rgb_convnet /
    flow_convnet: the saved stream networks (.keras); the rgb one is needed for stream "rgb",
    the flow one whenever the model reads flow (stream "flow" or motion attention). Each
    network's input size is read from the network. flow_params: TV-L1 settings and quantization
    bound, as used for the cached flow. frame_size: (width, height) every frame is resized to
    before flow and the rgb convnet ([video] frame_size); None keeps the video's size. theta,
    sigma: saliency threshold (Eq. 16) and Gaussian sigma in the original frame's pixels (boxes
    are in them too); frac: the LOWESS span. precision: dtype policy of the convnets; dtype:
    the feature cache's storage dtype, through which features are rounded exactly as the model
    saw them in training. class_names: in score order, for `predict_video`.
    """

    def __init__(self, model_path, rgb_convnet=None, flow_convnet=None, *, stream: str,
                 arch: str, attention: str = "appearance", flow_params: TVL1Params = TVL1Params(),
                 frame_size: FrameSize | None = None, theta: float = 100.0, sigma: float = 8.0,
                 frac: float = 0.3, precision: str = "float32", dtype: str = "float16",
                 class_names: Sequence[str] | None = None):
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
        self.frame_size = None if frame_size is None else parse_frame_size(
            format_frame_size(frame_size))
        self.dtype = dtype
        self.class_names = None if class_names is None else list(class_names)
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

    @classmethod
    def from_folder(cls, model, convnets: str | os.PathLike | None = None, *,
                    theta: float = 100.0, sigma: float = 8.0, frac: float = 0.3) -> "Predictor":
        """The model of a trained model folder with everything it was trained on, from its
        model.json alone: architecture, classes, frame size, TV-L1 settings, precision and
        dtype, and the recorded convnets (found where training found them, or by name in
        ``convnets``), refused when their weights' checksum differs from the recorded one."""
        record = read_model_record(model)
        where = str(model_folder(model) / RECORD_FILE)
        paths = find_convnets(record, model, convnets)
        for stream, path in paths.items():
            check_convnet(path, stream, record.convnets[stream], where)
        predictor = cls(model_folder(model), paths.get("rgb"), paths.get("flow"),
                        stream=record.stream, arch=record.arch, attention=record.attention,
                        flow_params=record.flow or TVL1Params(), frame_size=record.frame_size,
                        theta=theta, sigma=sigma, frac=frac, precision=record.precision,
                        dtype=record.dtype, class_names=record.classes)
        made = (predictor.inputs.layer, predictor.motion_layer if predictor.inputs.motion else None)
        recorded = (record.inputs.layer,
                    record.inputs.motion_layer if record.inputs.motion else None)
        if made != recorded:
            raise ValueError(f"{where}: records inputs {recorded}, but the saved model reads "
                             f"{made}")
        for stream, extractor in predictor.extractors.items():
            if extractor.inputs[0].shape[1] != record.image_size:
                raise ValueError(f"{paths[stream]}: input size {extractor.inputs[0].shape[1]}, "
                                 f"but {where} records image_size {record.image_size}")
        return predictor

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

    def _step(self, index: int, frame: np.ndarray, resized: np.ndarray,
              flow_image: np.ndarray | None, states: list, previous_box: np.ndarray
              ) -> tuple[FrameResult, list]:
        """One frame through convnets (the frame resized to the frame size), model and box
        chaining (Eq. 16-17, in the original frame's pixels)."""
        flow = self._features("flow", flow_image) if flow_image is not None else None
        own = flow if self.inputs.stream == "flow" else self._features("rgb", resized)
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
        """Results frame by frame as RGB uint8 (H, W, 3) frames arrive. Each frame is resized to
        the frame size for flow and the rgb convnet (exactly as ComputeFlow and ExtractFeatures
        resize); attention maps are upsampled to, and boxes given in, the frame's own pixels.

        When the model reads flow, frame t's result comes once frame t+1 has arrived (flow t is
        between them) and the last frame, which has no flow, gives none: the cached pipeline
        likewise uses min(rgb, flow) frames. Only the previous frame (and, with
        use_initial_flow, its flow) is kept between frames.
        """
        states = self.stepper.initial_states(1)
        box = np.full(4, np.nan)
        previous = previous_resized = previous_gray = flow = None
        for index, frame in enumerate(frames):
            frame = np.array(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"frame {index}: expected RGB uint8 (H, W, 3), got "
                                 f"{frame.dtype} {frame.shape}")
            resized = resize_frame(frame, self.frame_size)
            if not self.needs_flow:
                result, states = self._step(index, frame, resized, None, states, box)
                box = result.box
                yield result
                continue
            gray = flow_gray(resized)
            if previous is not None:
                flow = tvl1(previous_gray, gray, self.flow_params, initial_flow=flow)
                result, states = self._step(index - 1, previous, previous_resized, quantize(
                    flow, self.flow_params.bound), states, box)
                box = result.box
                yield result
            previous, previous_resized, previous_gray = frame, resized, gray


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
    from pipeline.report.figures import overlay_frame
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


def predict_video(video_path, predictor: Predictor, out_dir,
                  class_names: Sequence[str] | None = None, fps: float = 25) -> dict:
    """Apply `predictor` to a video and write its results to `out_dir` (class names: the
    predictor's, from its model.json, unless given).

    ranking.csv: every class with its tube score (frame scores averaged, Sec. 4), best first.
    tube.csv: per frame the chained box (Eq. 17) and its LOWESS-smoothed version, clipped to
    the frame, in the video's own pixels (whatever the frame size the model reads).
    overlay.avi: the frames with saliency and smoothed box. Smoothing needs the whole box
    sequence, so the overlay is made in a second decoding pass over the video, again one frame
    at a time, from the kept per-frame attention maps (N x N each) rather than a second run of
    the model.
    Returns {"top_class", "score", "frames", "top": [(class, score)] of the TOP best, "short":
    why the video decoded fewer frames than its header counts ("" when it did not)}.
    """
    check_fps(fps)
    class_names = predictor.class_names if class_names is None else list(class_names)
    if class_names is None:
        raise ValueError("no class names: give them, or build the predictor from a model folder")
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
    decoded = len(raw) + predictor.needs_flow
    return {"top_class": ranking["class"].iloc[0], "score": float(ranking["score"].iloc[0]),
            "frames": len(raw), "top": [(name, float(score)) for name, score in zip(
                ranking["class"].iloc[:TOP], ranking["score"].iloc[:TOP])],
            "short": shortfall(header_frames(video_path), decoded)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.predict",
        description="Apply a trained VideoLSTM to a video, frame by frame: class ranking, "
                    "action tube and an overlay video. Everything the model was trained on "
                    "(architecture, classes, frame size, TV-L1 settings, convnets) is read from "
                    "the model folder's model.json.")
    parser.add_argument("video")
    parser.add_argument("--model", required=True,
                        help="trained model folder (work/<dataset>/models/<model>-<hash>)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--convnets",
                        help="folder holding the model's convnet folders (convnet-<stream>-"
                             "<hash>), when they are not where training found them, e.g. on "
                             "another machine; their weights must match model.json's checksums")
    parser.add_argument("--theta", type=float, default=100.0, help="saliency threshold (Eq. 16)")
    parser.add_argument("--sigma", type=float, default=8.0,
                        help="Gaussian sigma, pixels of the video")
    parser.add_argument("--frac", type=float, default=0.3, help="LOWESS span (fraction)")
    parser.add_argument("--fps", type=float, default=25.0, help="overlay video frame rate")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point; a bad input ends with one line naming it and exit status 1."""
    args = _parser().parse_args(argv)
    try:
        check_fps(args.fps)
        if not Path(args.video).is_file():
            raise VideoError(f"{args.video}: video file does not exist")
        predictor = Predictor.from_folder(args.model, args.convnets, theta=args.theta,
                                          sigma=args.sigma, frac=args.frac)
        summary = predict_video(args.video, predictor, args.out, fps=args.fps)
    except (OSError, ValueError) as error:
        print(f"{_parser().prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    if summary["short"]:
        print(f"{_parser().prog}: warning: {args.video}: {summary['short']}; the results cover "
              "only the frames before it", file=sys.stderr)
    for rank, (name, score) in enumerate(summary["top"], 1):
        print(f"{rank}. {name}  {score:.4f}")
    print(f"{summary['top_class']} (score {summary['score']:.4f}) over {summary['frames']} "
          f"frames; results in {args.out}")


if __name__ == "__main__":
    main()
