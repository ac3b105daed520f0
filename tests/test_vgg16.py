"""VGG-16 streams: the real architecture, cross-modality initialisation, weights lookup."""

import numpy as np
import pytest

from models import imagenet, vgg16


def test_architecture_is_vgg16_with_pool5_and_fc7():
    model = vgg16.build_vgg16("rgb", n_classes=5, image_size=64)
    convs = [layer for layer in model.layers if layer.name.startswith("block")
             and "conv" in layer.name]
    assert len(convs) == 13
    assert model.get_layer("fc1").units == 4096 and model.get_layer("fc2").units == 4096
    assert model.output.shape == (None, 5)
    pool5, fc7 = vgg16.feature_extractor(model).outputs
    assert tuple(pool5.shape) == (None, 2, 2, 512)
    assert tuple(fc7.shape) == (None, 4096)


def test_flow_stream_takes_two_channels():
    model = vgg16.build_vgg16("flow", n_classes=3, image_size=32)
    assert model.input.shape == (None, 32, 32, 2)


@pytest.mark.parametrize("stream,size", [("depth", 64), ("rgb", 48), ("rgb", 0)])
def test_bad_stream_or_size_is_refused(stream, size):
    with pytest.raises(ValueError, match="stream|image_size"):
        vgg16.build_vgg16(stream, 3, size)


def test_cross_modality_kernel_averages_rgb_filters():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32)
    flow = vgg16.cross_modality_kernel(kernel, 2)
    assert flow.shape == (3, 3, 2, 4)
    expected = (kernel[:, :, 0] + kernel[:, :, 1] + kernel[:, :, 2]) / 3
    np.testing.assert_allclose(flow[:, :, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(flow[:, :, 1], expected, rtol=1e-6)


def test_seeded_random_initialisation_is_repeatable_and_flow_inherits_rgb():
    rgb_a = vgg16.initialise("rgb", 4, 32, "none", seed=3)
    rgb_b = vgg16.initialise("rgb", 4, 32, "none", seed=3)
    flow = vgg16.initialise("flow", 4, 32, "none", seed=3)
    for a, b in zip(rgb_a.get_weights(), rgb_b.get_weights()):
        np.testing.assert_array_equal(a, b)
    first_rgb = rgb_a.get_layer("block1_conv1").get_weights()[0]
    first_flow = flow.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_allclose(first_flow[:, :, 1], first_rgb.mean(axis=2), rtol=1e-6)
    np.testing.assert_array_equal(flow.get_layer("fc2").get_weights()[0],
                                  rgb_a.get_layer("fc2").get_weights()[0])
    other = vgg16.initialise("rgb", 4, 32, "none", seed=4)
    assert not np.array_equal(other.get_weights()[0], rgb_a.get_weights()[0])


def test_missing_imagenet_weights_say_where_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(vgg16.WeightsNotFoundError,
                       match=r"convnet.weights='imagenet'.*vgg16_weights_tf_dim_ordering"):
        vgg16.initialise("rgb", 4, 224, "imagenet", seed=0)
    with pytest.raises(vgg16.WeightsNotFoundError, match="nowhere.h5"):
        imagenet.find_imagenet_weights(str(tmp_path / "nowhere.h5"))


def test_imagenet_weights_need_224_inputs():
    with pytest.raises(ValueError, match="image_size must be 224"):
        vgg16.initialise("rgb", 4, 160, "imagenet", seed=0)


def write_release_weights(model, path):
    """Write weights in the layout of Keras' VGG-16 release file (legacy HDF5: root attribute
    layer_names, one group per layer with attribute weight_names and one dataset per weight)."""
    import h5py
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=value)


@pytest.mark.slow
def test_imagenet_file_in_keras_format_is_loaded_and_carried_to_flow(tmp_path, monkeypatch):
    """A weights file in the Keras release layout (here random values) is found in Keras' cache
    and every layer but the classifier is carried over to both streams."""
    import keras
    reference = keras.applications.VGG16(weights=None)
    (tmp_path / "models").mkdir()
    write_release_weights(reference, tmp_path / "models" / imagenet.IMAGENET_FILE)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    rgb = vgg16.initialise("rgb", 7, 224, "imagenet", seed=0)
    flow = vgg16.initialise("flow", 7, 224, "imagenet", seed=0)
    np.testing.assert_array_equal(rgb.get_layer("fc2").get_weights()[0],
                                  reference.get_layer("fc2").get_weights()[0])
    np.testing.assert_allclose(flow.get_layer("block1_conv1").get_weights()[0][:, :, 0],
                               reference.get_layer("block1_conv1").get_weights()[0].mean(axis=2),
                               rtol=1e-6)
    assert rgb.output.shape == (None, 7)


def test_a_file_that_is_not_vgg16_weights_is_a_clear_error(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(vgg16.WeightsNotFoundError, match="not a VGG-16 weights file"):
        vgg16.initialise("rgb", 4, 224, str(bad), seed=0)
