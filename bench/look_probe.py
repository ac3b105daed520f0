"""Can the cached RGB features tell the actor's look? A linear probe on training videos only.

For every training video, the RGB pool5 features of the cells whose centres lie in the actor's
box are averaged over cells and frames (and, for comparison, those of all other cells); a ridge
classifier predicts the actor's look (class % 4 on the synthetic dataset) and is scored by
5-fold cross-validation over the training videos. A convnet whose features score well here
reads the look; a recurrent model that then misclassifies does so for another reason.

    LUIGI_CONFIG_PATH=<a sweep pair's cfg> .venv/bin/python bench/look_probe.py

Needs the dataset's RGB features cached and box annotations for the training videos.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attention_formation import actor_cells  # noqa: E402  (this script's folder is on the path)

FOLDS = 5
RIDGE = 100.0
LOOKS = 4


def cross_validated_accuracy(features: np.ndarray, labels: np.ndarray, classes: int,
                             seed: int = 0) -> float:
    """Mean accuracy over FOLDS folds of a ridge classifier on standardised features (N, D)."""
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    folds = np.random.default_rng(seed).permutation(len(labels)) % FOLDS
    scores = []
    for fold in range(FOLDS):
        fit, held = folds != fold, folds == fold
        weights = np.linalg.solve(x[fit].T @ x[fit] + RIDGE * np.eye(x.shape[1]),
                                  x[fit].T @ np.eye(classes)[labels[fit]])
        scores.append(float(((x[held] @ weights).argmax(1) == labels[held]).mean()))
    return float(np.mean(scores))


def main() -> int:
    import tasks
    from pipeline import config
    from pipeline.identity import descriptions
    from pipeline.manifest import decode_tubes, read_manifest
    from pipeline.training.source import FeatureSource
    from pipeline.video import iter_frames
    dataset = config.run().dataset
    manifest = read_manifest(tasks.Manifest(dataset=dataset, split=1).output().path)
    train = manifest[manifest["split"] == "train"]
    inputs = descriptions.model_inputs("convalstm", "rgb", "appearance")
    inside, outside, looks = [], [], []
    with FeatureSource({"rgb": descriptions.feature_shards(dataset, "rgb")}, inputs) as source:
        for _, row in train.iterrows():
            frames = source.frames(row["video_id"], np.arange(source.length(row["video_id"])))
            features = frames["features"].astype(np.float32)
            tube = decode_tubes(row["tubes"])[0]
            boxes = np.asarray(tube["boxes"])[:len(features) - tube["start"]]
            frame_hw = next(iter_frames(row["path"])).shape[:2]
            masks = actor_cells(boxes, features.shape[1], frame_hw)
            shown = features[tube["start"]:tube["start"] + len(masks)]
            inside.append(np.mean([f[m].mean(0) for f, m in zip(shown, masks) if m.any()], 0))
            outside.append(np.mean([f[~m].mean(0) for f, m in zip(shown, masks)], 0))
            looks.append(int(row["label_index"]) % LOOKS)
    looks = np.asarray(looks)
    for name, features in (("actor's cells", inside), ("other cells", outside)):
        accuracy = cross_validated_accuracy(np.asarray(features), looks, LOOKS)
        print(f"look from the {name}: {accuracy:.3f} ({len(looks)} training videos, "
              f"{FOLDS}-fold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
