"""Models built by name: interface, heads, streaming, saving, motion wiring."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.registry import ARCHITECTURES, FrameStepper, ModelSizes, build_model

SIZES = ModelSizes(hidden=3, kernel=3, attention_kernel=1, dense=6, dropout=0.5)
N_CLASSES, B, T, N, D, DM, FC7 = 4, 2, 5, 4, 3, 2, 8
# (arch, attention): every architecture, plus motion attention on ALSTM and ConvALSTM (Table 2).
VARIANTS = [(arch, "appearance") for arch in ARCHITECTURES] + [
    ("alstm", "motion"), ("convalstm", "motion")]
ATTENDING = {"alstm", "convalstm", "videolstm"}


def uses_motion(arch, attention):
    return arch == "videolstm" or attention == "motion"


def build(arch, attention="appearance", n=N, sizes=SIZES):
    feature_shape = (FC7,) if arch in ("convnet", "lstm") else (n, n, D)
    motion_shape = (n, n, DM) if uses_motion(arch, attention) else None
    return build_model(arch, N_CLASSES, feature_shape, sizes, attention, motion_shape)


def inputs_for(model, rng, t=T, batch=B):
    return {name: rng.normal(size=(batch, t, *tensor.shape[2:])).astype("float32")
            for name, tensor in model.input.items()}


@pytest.mark.parametrize("arch, attention", VARIANTS)
def test_every_architecture_runs_with_the_documented_outputs(arch, attention):
    model = build(arch, attention)
    rng = np.random.default_rng(0)
    expected_inputs = {"features", "motion"} if uses_motion(arch, attention) else {"features"}
    assert set(model.input) == expected_inputs
    for t in (T, 2):
        out = model(inputs_for(model, rng, t))
        assert set(out) == ({"scores", "attention"} if arch in ATTENDING else {"scores"})
        scores = np.asarray(out["scores"])
        assert scores.shape == (B, t, N_CLASSES)
        np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)
        if arch in ATTENDING:
            attention_maps = np.asarray(out["attention"])
            assert attention_maps.shape == (B, t, N, N)
            assert (attention_maps >= 0).all()
            np.testing.assert_allclose(attention_maps.sum(axis=(2, 3)), 1.0, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ATTENDING))
@pytest.mark.parametrize("n", [3, 5, 7])
def test_attention_maps_follow_the_grid(arch, n):
    model = build(arch, n=n)
    attention_maps = np.asarray(model(inputs_for(model, np.random.default_rng(n)))["attention"])
    assert attention_maps.shape == (B, T, n, n)
    np.testing.assert_allclose(attention_maps.sum(axis=(2, 3)), 1.0, atol=1e-5)


def test_the_head_is_dense_relu_dropout_softmax_on_the_flattened_state():
    model = build("convlstm")
    head = model.get_layer("head")
    rng = np.random.default_rng(1)
    state = rng.normal(size=(B, T, N, N, SIZES.hidden)).astype("float32")
    w1, b1, w2, b2 = (np.asarray(v.numpy(), dtype=np.float64) for v in head.weights)
    hidden = np.maximum(state.reshape(B, T, -1) @ w1 + b1, 0)
    logits = hidden @ w2 + b2
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(head(state)), expected, atol=1e-5)
    assert np.abs(np.asarray(head(state, training=True)) - expected).max() > 1e-4


@pytest.mark.parametrize("arch, attention", VARIANTS)
def test_streaming_frame_by_frame_equals_the_sequence(arch, attention):
    model = build(arch, attention)
    rng = np.random.default_rng(2)
    inputs = inputs_for(model, rng)
    full = model(inputs)
    stepper = FrameStepper(model)
    states = stepper.initial_states(B)
    for t in range(T):
        scores, attention_t, states = stepper.step({k: v[:, t] for k, v in inputs.items()},
                                                   states)
        np.testing.assert_allclose(np.asarray(scores), np.asarray(full["scores"][:, t]),
                                   atol=1e-5)
        if arch in ATTENDING:
            np.testing.assert_allclose(np.asarray(attention_t),
                                       np.asarray(full["attention"][:, t]), atol=1e-5)
        else:
            assert attention_t is None


def test_streaming_needs_the_motion_input():
    stepper = FrameStepper(build("videolstm"))
    with pytest.raises(ValueError, match="motion"):
        stepper.step({"features": np.zeros((1, N, N, D), "float32")}, stepper.initial_states(1))


@pytest.mark.parametrize("arch, attention", VARIANTS)
def test_keras_file_round_trip_gives_identical_outputs(arch, attention, tmp_path):
    model = build(arch, attention)
    inputs = inputs_for(model, np.random.default_rng(3))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    expected, got = model(inputs), loaded(inputs)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(expected[key]))


def test_videolstm_attention_at_t_depends_on_the_flow_at_t_and_not_later():
    model = build("videolstm")
    rng = np.random.default_rng(4)
    inputs = inputs_for(model, rng)
    changed = dict(inputs, motion=inputs["motion"].copy())
    changed["motion"][:, 2] += rng.normal(size=changed["motion"][:, 2].shape)
    a, a_changed = (np.asarray(model(x)["attention"]) for x in (inputs, changed))
    np.testing.assert_allclose(a_changed[:, :2], a[:, :2], atol=1e-7)
    assert np.abs(a_changed[:, 2] - a[:, 2]).max() > 1e-4


@pytest.mark.parametrize("arch, attention", [("videolstm", "appearance"), ("alstm", "motion")])
def test_flow_reaches_the_scores_only_through_attention(arch, attention):
    """Different flow changes the scores; with uniform attention (W_z = 0) it cannot."""
    model = build(arch, attention)
    rng = np.random.default_rng(5)
    inputs = inputs_for(model, rng)
    other = dict(inputs, motion=rng.normal(size=inputs["motion"].shape).astype("float32"))

    def scores(x):
        return np.asarray(model(x)["scores"])

    assert np.abs(scores(inputs) - scores(other)).max() > 1e-5
    w_z = model.get_layer("recurrent").cell.attention_score_kernel
    w_z.assign(np.zeros(w_z.shape, "float32"))
    np.testing.assert_allclose(scores(other), scores(inputs), atol=1e-6)


def test_every_weight_of_videolstm_learns_from_the_class_loss():
    """The bottom layer gets gradient only through the attention: it must be wired in."""
    model = build("videolstm")
    rng = np.random.default_rng(6)
    inputs = inputs_for(model, rng)
    labels = rng.integers(0, N_CLASSES, size=(B, T))
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs, training=True)["scores"])
    grads = tape.gradient(loss, model.trainable_variables)
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None and np.abs(np.asarray(grad)).max() > 0, variable.path


def test_videolstm_is_always_motion_attention():
    model = build_model("videolstm", N_CLASSES, (N, N, D), SIZES, motion_shape=(N, N, DM))
    assert set(model.input) == {"features", "motion"}
    with pytest.raises(ValueError, match="motion_shape"):
        build_model("videolstm", N_CLASSES, (N, N, D), SIZES)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'gru'") as error:
        build_model("gru", N_CLASSES, (FC7,), SIZES)
    for name in ARCHITECTURES:
        assert name in str(error.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(arch="lstm", feature_shape=(FC7,), attention="motion", motion_shape=(N, N, DM)),
     "attending architecture"),
    (dict(arch="convlstm", feature_shape=(N, N, D), attention="spatial"), "attention must be"),
    (dict(arch="convalstm", feature_shape=(FC7,)), "feature_shape"),
    (dict(arch="lstm", feature_shape=(N, N, D)), "feature_shape"),
    (dict(arch="convalstm", feature_shape=(N, N, D), motion_shape=(N, N, DM)), "motion_shape"),
    (dict(arch="alstm", feature_shape=(N, N, D), attention="motion", motion_shape=(N, DM)),
     "motion_shape"),
])
def test_inconsistent_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(n_classes=N_CLASSES, sizes=SIZES, **kwargs)


def test_model_sizes_default_to_the_paper():
    assert ModelSizes() == ModelSizes(hidden=512, kernel=3, attention_kernel=1, dense=1024,
                                      dropout=0.7)


@pytest.mark.parametrize("setting, value", [
    ("hidden", 0), ("hidden", 2.5), ("kernel", 2), ("kernel", -3), ("attention_kernel", 0),
    ("dense", True), ("dropout", 1.0), ("dropout", -0.1)])
def test_model_sizes_out_of_range_name_the_setting(setting, value):
    with pytest.raises(ValueError, match=f"ModelSizes.{setting} "):
        ModelSizes(**{setting: value})


def test_normalization_layer_standardises_each_input_and_streams_the_same():
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, size=(2, 4, 3, 3, 5)).astype(np.float32)
    m = rng.normal(-1.0, 0.5, size=(2, 4, 3, 3, 2)).astype(np.float32)
    stats = {"features": (np.full(5, 3.0), np.full(5, 4.0)),
             "motion": (np.full(2, -1.0), np.full(2, 0.25))}
    keras.utils.set_random_seed(1)
    plain = build_model("videolstm", 3, (3, 3, 5), SIZES, motion_shape=(3, 3, 2))
    normalized = build_model("videolstm", 3, (3, 3, 5), SIZES, motion_shape=(3, 3, 2),
                             normalization=stats)
    normalized.get_layer("recurrent").set_weights(plain.get_layer("recurrent").get_weights())
    normalized.get_layer("head").set_weights(plain.get_layer("head").get_weights())
    want = plain.predict_on_batch({"features": (x - 3.0) / 2.0, "motion": (m + 1.0) / 0.5})
    got = normalized.predict_on_batch({"features": x, "motion": m})
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-4, atol=1e-6)
    stepper = FrameStepper(normalized)
    states = stepper.initial_states(2)
    for t in range(4):
        scores, _, states = stepper.step({"features": x[:, t], "motion": m[:, t]}, states)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(scores), got["scores"][:, t],
                                   rtol=1e-4, atol=1e-6)
