"""VGG-16 per stream (paper 5.2): the keras.applications architecture for RGB (3 channels) and
flow (2 channels), ImageNet weights from a local file or Keras' cache, and cross-modality
initialisation of the flow network's first convolution from the RGB filters."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from models.imagenet import WeightsNotFoundError, find_imagenet_weights

STREAM_CHANNELS = {"rgb": 3, "flow": 2}
IMAGENET_SIZE = 224
POOL5 = "block5_pool"
FC7 = "fc2"
FIRST_CONV = "block1_conv1"
CLASSIFIER = "predictions"


def build_vgg16(stream: str, n_classes: int, image_size: int) -> keras.Model:
    """The VGG-16 architecture (13 conv + fc6, fc7 and an n_classes softmax) for one stream.

    Input (batch, image_size, image_size, channels); pool5 is (image_size/32)^2 x 512.
    """
    if stream not in STREAM_CHANNELS:
        raise ValueError(f"stream must be one of {sorted(STREAM_CHANNELS)}, got {stream!r}")
    if image_size < 32 or image_size % 32:
        raise ValueError(f"convnet.image_size must be a multiple of 32 >= 32, got {image_size}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This model usually expects")
        return keras.applications.VGG16(
            include_top=True, weights=None, classes=n_classes,
            input_shape=(image_size, image_size, STREAM_CHANNELS[stream]))


def initialise(stream: str, n_classes: int, image_size: int, weights: str, seed: int
               ) -> keras.Model:
    """A stream's network before fine-tuning: ImageNet (``imagenet`` or a file path) or seeded
    random (``none``) weights, built for RGB and carried to flow by cross-modality init."""
    if weights == "none":
        keras.utils.set_random_seed(seed)
        source = build_vgg16("rgb", n_classes, image_size)
    else:
        if image_size != IMAGENET_SIZE:
            raise ValueError(f"convnet.image_size must be {IMAGENET_SIZE} with ImageNet weights "
                             f"(fc6 is tied to a 7x7 pool5), got {image_size}")
        path = find_imagenet_weights(weights)
        try:
            source = keras.applications.VGG16(include_top=True, weights=str(path))
        except (OSError, ValueError) as error:
            raise WeightsNotFoundError(f"convnet.weights: {path} is not a VGG-16 weights file "
                                       f"({error})") from error
    keras.utils.set_random_seed(seed + 1)
    model = build_vgg16(stream, n_classes, image_size)
    transfer_weights(source, model)
    return model


def transfer_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every layer's weights but the classifier's; a first convolution with another number
    of input channels gets the source filters averaged over channels (cross-modality init)."""
    for layer in target.layers:
        if layer.name == CLASSIFIER or not layer.weights:
            continue
        weights = source.get_layer(layer.name).get_weights()
        if layer.name == FIRST_CONV:
            weights[0] = cross_modality_kernel(weights[0], layer.get_weights()[0].shape[2])
        layer.set_weights(weights)


def cross_modality_kernel(kernel: np.ndarray, channels: int) -> np.ndarray:
    """(kh, kw, c_in, c_out) RGB filters averaged over colour, repeated for ``channels`` inputs."""
    mean = kernel.mean(axis=2, keepdims=True)
    return np.repeat(mean, channels, axis=2).astype(kernel.dtype)


def feature_extractor(model: keras.Model) -> keras.Model:
    """pool5 (B, N, N, 512) and fc7 (B, 4096) of a stream network in one pass."""
    return keras.Model(model.inputs, [model.get_layer(POOL5).output, model.get_layer(FC7).output])


def load_extractor(path: str, precision: str = "float32") -> keras.Model:
    """pool5/fc7 extractor of a saved stream network, rebuilt under a dtype policy
    (``mixed_bfloat16`` roughly doubles CPU throughput) with the saved weights."""
    saved = keras.models.load_model(path, compile=False)
    _, size, _, channels = saved.input.shape
    stream = {c: s for s, c in STREAM_CHANNELS.items()}[channels]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_vgg16(stream, saved.output.shape[-1], size)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.set_weights(saved.get_weights())
    return feature_extractor(model)
