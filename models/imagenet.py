"""Where the ImageNet VGG-16 weights are found: a configured file or Keras' cache. Free of Keras,
so the config check can refuse a missing file before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

IMAGENET_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


class WeightsNotFoundError(FileNotFoundError):
    """ImageNet weights were asked for and no local copy exists."""


def find_imagenet_weights(setting: str) -> Path:
    """The ImageNet weights file: the configured path, or Keras' cache for ``imagenet``."""
    if setting == "imagenet":
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
        path = cache / IMAGENET_FILE
    else:
        path = Path(setting).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"convnet.weights={setting!r}: no ImageNet VGG-16 weights at {path}. This machine "
            f"cannot download them: copy {IMAGENET_FILE} (the Keras release file, with top) "
            "there or set [convnet] weights to its path; or set weights = none for a seeded "
            "random initialisation")
    return path
