"""ReproducePaper's report, assembled from the folders of the evaluations: per dataset the claims,
Tables 1-4 and Fig. 4 with 95% intervals, Fig. 3-style strips, training curves and skipped
videos, then report.md. Paths in, files out: the task only says where its inputs are."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.localization_eval import LOCALIZED
from pipeline.manifest import read_manifest
from pipeline.report import report, stats

CLASSIFICATION = ("synthetic", "ucf101", "hmdb51")
LOCALIZATION = ("synthetic", "thumos13")
TABLE1 = ("convnet", "lstm", "alstm", "convlstm", "convalstm")
TABLE2 = {("appearance", "alstm"): ("alstm", "appearance"),
          ("appearance", "convalstm"): ("convalstm", "appearance"),
          ("motion", "alstm"): ("alstm", "motion"),
          ("motion", "convalstm"): ("videolstm", "motion")}
"""Table 2's cells and the model behind each: the motion-attention ConvALSTM is VideoLSTM."""
CELLS = {**{("table1", stream, arch): (arch, stream, "appearance")
            for stream in ("rgb", "flow") for arch in TABLE1},
         **{("table2", attention, name): (arch, "rgb", model_attention)
            for (attention, name), (arch, model_attention) in TABLE2.items()},
         **{("table3", stream, "videolstm"): ("videolstm", stream, "motion")
            for stream in ("rgb", "flow")}}
"""Every evaluated cell of Tables 1-3, (table, row, column) -> (arch, stream, attention)."""
STAMP = re.compile(r"^<!-- made from inputs ([0-9a-f]{16}) -->$", re.MULTILINE)
"""The last line of a report.md: the identity of the outputs it was made from."""


@dataclass(frozen=True)
class Localized:
    """Fig. 4's inputs: EvaluateLocalization's folder, its split's manifest, each method's tube
    file (LOCALIZED and the baseline) and the Gaussian sigma the tubes were made with."""

    evaluation: Path
    manifest: Path
    tubes: dict[str, Path]
    sigma: float


@dataclass(frozen=True)
class DatasetOutputs:
    """Where one dataset's outputs are. ``evaluations``: (replicate, split, table, row, column)
    -> Evaluate folder; ``models``: model name -> TrainModel folder (the training curves shown);
    ``fused``: (replicate, split) -> Fuse folder (these three for CLASSIFICATION datasets);
    ``localized``: Fig. 4's inputs, one per replicate; ``shards``: stage -> its shard files."""

    name: str
    splits: tuple[int, ...]
    manifests: tuple[Path, ...]
    shards: dict[str, list[Path]]
    evaluations: dict[tuple, Path]
    models: dict[str, Path]
    fused: dict[tuple[int, int], Path]
    localized: list[Localized]


def paper_report(folder: Path, profile: str, outputs: list[DatasetOutputs], timings: Path,
                 streaming: float | None) -> str:
    """report.md's text; the claims, tables and figures are written into ``folder`` beside it.
    ``streaming``: C5's difference, measured on the first dataset."""
    from pipeline.report import claims, evidence, figures
    folder.mkdir(parents=True, exist_ok=True)
    results, chance, localization, shown, skipped = {}, {}, {}, {}, {}
    verdicts, readings = {}, {}
    missing4 = None
    for dataset in outputs:
        skipped.update(skipped_videos(dataset.name, dataset.manifests, dataset.shards))
        measurements = {}
        if dataset.name in CLASSIFICATION:
            results[dataset.name], chance[dataset.name], missing4, measurements = \
                classification(dataset.evaluations, dataset.fused)
            shown[f"training curves ({dataset.name})"] = figures.training_curves(
                training_histories(dataset.models),
                folder / f"training_{dataset.name}.png").name
        if dataset.name in LOCALIZATION:
            localization[dataset.name], strip, tubes = localized(dataset.name,
                                                                 dataset.localized, folder)
            shown.update(strip)
            measurements.update(tubes)
        if dataset.name == "synthetic":
            from pipeline.datasets.synthetic import READING_THE_CLAIMS
            readings[dataset.name] = READING_THE_CLAIMS
        verdicts[dataset.name] = claims.evaluate_claims(
            measurements, evidence.map_at, streaming if dataset.name == outputs[0].name else None)
        claims.claims_table(verdicts[dataset.name]).to_csv(
            folder / f"claims_{dataset.name}.csv", index=False)
    tables = report.classification_tables(results)
    for key, table in tables.items():
        table.to_csv(folder / f"{key}.csv", index=False)
    for dataset, frames in localization.items():
        for name, frame in frames.items():
            frame.to_csv(folder / f"fig4_{name}_{dataset}.csv", index=False)
    sections = {dataset: claims.claims_markdown(found) + (
        f"\n{readings[dataset]}\n" if dataset in readings else "")
        for dataset, found in verdicts.items()}
    return report.paper_report(profile, tables, chance, localization, shown,
                               report.stage_times(timings), skipped, missing4,
                               generated=time.strftime("%Y-%m-%d %H:%M:%S"),
                               splits={d.name: d.splits for d in outputs if d.name in results},
                               claims=sections, devices=report.device_times(timings))


def classification(evaluations: dict[tuple, Path], fused: dict[tuple[int, int], Path]):
    """Every cell's accuracy (the mean over the dataset's splits, then over replicates) with a
    95% Wilson interval over its pooled test videos and each replicate's accuracy, Table 4,
    and the per-video correctness of each cell (one array per replicate), for the claims. Every
    cell is measured on the test videos all cells share (a video one stream skipped leaves
    every cell), so the tables compare like with like."""
    from pipeline.report import evidence
    correct: dict = {}
    for (replicate, split, table, row, column), path in evaluations.items():
        correct.setdefault(claim_key(table, row, column), {}).setdefault(replicate, []).append(
            evidence.correct_per_video(path / "scores.csv").rename(
                lambda video, split=split: f"split{split}/{video}"))
        chance = report.read_json(path / "metrics.json")["chance"]
    fusions = []
    for (replicate, split), path in fused.items():
        fusions.append(report.read_json(path / "metrics.json")["accuracy"])
        correct.setdefault(claim_key("table3", "fused"), {}).setdefault(replicate, []).append(
            evidence.correct_per_video(path / "scores.csv").rename(
                lambda video, split=split: f"split{split}/{video}"))
    series = {key: [pd.concat(parts[r]) for r in sorted(parts)] for key, parts in correct.items()}
    videos = evidence.common_videos({f"{key}/{r}": s for key, replicates in series.items()
                                     for r, s in enumerate(replicates)})
    result = {"table1": {}, "table2": {}, "table3": {}, "table4": {}}
    for key, replicates in series.items():
        table, *cell = key.split("/")
        pooled = [s.loc[videos] for s in replicates]
        values = [float(p.groupby(p.index.str.split("/").str[0]).mean().mean()) for p in pooled]
        estimate = report.Accuracy(float(np.mean(values)),
                                   *stats.replicate_mean_interval([p.to_numpy() for p in pooled]),
                                   len(videos), tuple(values))
        if len(cell) == 1:
            result[table][cell[0]] = estimate
        else:
            result[table].setdefault(cell[0], {})[cell[1]] = estimate
    names = {"idt": "iDT(FV)", "idt+videolstm": "iDT(FV)+VideoLSTM",
             "objects": "Objects", "objects+videolstm": "Objects+VideoLSTM",
             "idt+objects": "iDT(FV)+Objects",
             "idt+objects+videolstm": "iDT(FV)+Objects+VideoLSTM"}
    for key, name in names.items():
        if key in fusions[0]:
            result["table4"][name] = float(np.mean([f[key] for f in fusions]))
    missing = None if result["table4"] else (
        "Not computed: iDT and object scores cannot be computed here. Supply them as CSV "
        "files (header `video_id,<class>,...`, one row per test video, non-negative "
        "scores; see pipeline/fusion.py) in `[fusion] idt` and `[fusion] objects` (a path "
        "may hold `{dataset}` and `{split}`), and rerun ReproducePaper.")
    return result, chance, missing, {key: [s.loc[videos].to_numpy(bool) for s in replicates]
                                     for key, replicates in series.items()}


def localized(dataset: str, replicates: list[Localized], folder: Path):
    """Fig. 4 tables (the mean over replicates) with 95% intervals and plots, a Fig. 3-style
    strip of one test video (the first replicate's VideoLSTM), and the tube evidence of
    VideoLSTM and ALSTM for the claims (one entry per replicate; per video in test-list order,
    with the overlap of each of its ground-truth tubes)."""
    from pipeline import localization_eval
    from pipeline.report import evidence, figures
    manifest = read_manifest(replicates[0].manifest)
    truth = localization_eval.ground_truth(manifest)
    tubes = [{name: evidence.tube_evidence(str(path), truth) for name, path in inputs.tubes.items()}
             for inputs in replicates]
    frames = {}
    for name in ("recall", "map"):
        paths = [inputs.evaluation / f"{name}.csv" for inputs in replicates]
        frames[name] = report.replicate_mean([pd.read_csv(path) for path in paths],
                                             [str(path) for path in paths])
    shown = {}
    for name, plot in (("recall", figures.recall_vs_iou), ("map", figures.map_vs_iou)):
        table = frames[name]
        shown[f"Fig. 4 {name} ({dataset})"] = plot(
            {c: table[c].to_numpy() for c in table.columns if c != "iou"},
            table["iou"].to_numpy(), folder / f"fig4_{name}_{dataset}.png",
            f"{dataset}: {'recall' if name == 'recall' else 'video mAP'} vs IoU").name
    frames = {name: report.with_intervals(frame, tubes, name) for name, frame in frames.items()}
    strip = localization_eval.attention_strip(
        str(replicates[0].tubes["VideoLSTM"]), manifest, replicates[0].sigma,
        folder / f"fig3_{dataset}.png", f"{dataset}: VideoLSTM attention and tube")
    shown[f"Fig. 3 ({dataset})"] = strip.name
    videos = evidence.common_videos({f"{name}/{r}": table["label"]
                                     for r, methods in enumerate(tubes)
                                     for name, table in methods.items() if name in LOCALIZED})
    measurements = {}
    for name in LOCALIZED:
        tables = [methods[name].loc[videos] for methods in tubes]
        key = f"fig4/{name.lower()}"
        measurements[f"{key}/smoothed"] = [
            (evidence.overlap_matrix(table, "smoothed"), evidence.score_matrix(table),
             table["label"].to_numpy()) for table in tables]
        measurements[key] = [(evidence.overlap_matrix(table, "smoothed"),
                              evidence.overlap_matrix(table, "not smoothed")) for table in tables]
    return frames, shown, measurements


def streaming_difference(model: Path, source, manifest: Path) -> float:
    """C5: a model (VideoLSTM, rgb) run frame by frame against the whole-sequence run, on the
    first three test videos of its split's ``manifest`` whose features ``source`` holds."""
    import keras

    from models import registry  # noqa: F401  (registers the layers load_model needs)
    from pipeline.report import evidence
    model = keras.models.load_model(model / "model.keras")
    with source:
        table = read_manifest(manifest)
        test = [v for v in table[table["split"] == "test"]["video_id"]
                if v in source.videos_cached()][:3]
        return evidence.streaming_difference(model, source, test)


def claim_key(table: str, *cell: str) -> str:
    """The claims' name of a table cell: table1/<stream>/<arch>, table2/<attention>/<arch>,
    table3/<rgb|flow|fused> (pipeline.report.claims)."""
    if table == "table3":
        return f"table3/{cell[0]}"
    return "/".join((table, *cell))


def training_histories(models: dict[str, Path]) -> dict:
    """Training history of every model (model name -> TrainModel folder), by model name."""
    return {name: pd.read_csv(folder / "history.csv") for name, folder in models.items()}


def skipped_videos(dataset: str, manifests: tuple[Path, ...],
                   shards: dict[str, list[Path]]) -> dict[str, str]:
    """Videos skipped by the flow and feature stages of a dataset (stage -> its shard files,
    those not made yet passed over), or kept decoded short of their header, and by the
    manifests' boxes, with their reasons."""
    skipped = {}
    for manifest in manifests:
        table = read_manifest(manifest)
        skipped.update({f"{dataset}/{video} (Manifest: boxes)": reason for video, reason
                        in zip(table["video_id"], table["tubes_skipped"]) if reason})
    for stage, paths in shards.items():
        paths = [str(path) for path in paths if path.exists()]
        summary = report.shard_summary(paths)
        skipped.update({f"{dataset}/{video} ({stage})": reason for video, reason in
                        {**summary["short"], **summary["skipped"]}.items()})
    return skipped


def inputs_identity(paths: Iterable[str | Path]) -> str:
    """What a report is made from: a hash of its inputs' folder and file names, which carry the
    hashes of every setting and video upstream, so wherever the roots lie one graph has one
    identity and other settings (a flow setting, a seed, a replicate count) another."""
    names = sorted(f"{Path(path).parent.name}/{Path(path).name}" for path in paths)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def stamped(text: str, identity: str) -> str:
    """report.md's text with its inputs' identity as a last, unrendered line."""
    return f"{text.rstrip()}\n\n<!-- made from inputs {identity} -->\n"


def stamp(text: str) -> str | None:
    """The inputs' identity a report.md's text was stamped with; None for an unstamped one."""
    found = STAMP.findall(text)
    return found[-1] if found else None
