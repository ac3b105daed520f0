"""Models built by name: interface, heads, streaming, saving, motion wiring, and the settings
where the paper is silent (initial states, head activation, the ALSTM's motion input)."""

import configparser
import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.registry import ARCHITECTURES, ATTENDING, FrameStepper, ModelSizes, build_model

SIZES = ModelSizes(hidden=3, attention=5, kernel=3, attention_kernel=1, dense=6,
                   dropout=0.5)
N_CLASSES, B, T, N, D, DM, FC7 = 4, 2, 5, 4, 3, 2, 8
# (arch, attention): every architecture, plus motion attention on ALSTM and ConvALSTM (Table 2).
VARIANTS = [(arch, "appearance") for arch in ARCHITECTURES] + [
    ("alstm", "motion"), ("convalstm", "motion")]
ATTENDING = {"alstm", "convalstm", "videolstm"}


def uses_motion(arch, attention):
    return arch == "videolstm" or attention == "motion"


def build(arch, attention="appearance", n=N, sizes=SIZES, trained_scores=True):
    """The model; with ``trained_scores`` its score kernel W_z drawn at random, as after
    training (a new model attends uniformly, which would hide what the attention reads)."""
    feature_shape = (FC7,) if arch in ("convnet", "lstm") else (n, n, D)
    motion_shape = None
    if uses_motion(arch, attention):
        fc7_motion = arch == "alstm" and sizes.alstm_motion_input == "fc7"
        motion_shape = (FC7,) if fc7_motion else (n, n, DM)
    model = build_model(arch, N_CLASSES, feature_shape, sizes, attention, motion_shape)
    cell = model.get_layer("recurrent").cell if arch in ATTENDING else None
    if trained_scores and cell is not None:
        w_z = cell.attention_score_kernel
        w_z.assign(np.random.default_rng(11).normal(size=w_z.shape).astype("float32"))
    return model


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


def test_the_heads_dropout_masks_the_dense_layers_output():
    """In training, every frame's scores are the NumPy head with some keep-mask m over the
    dense units: softmax((m * relu(x w1 + b1) / (1 - rate)) w2 + b2), searched over all
    2^6 masks. Dropout anywhere else (e.g. on the state before the dense layer) matches none."""
    model = build("convlstm")
    head = model.get_layer("head")
    rng = np.random.default_rng(2)
    state = rng.normal(size=(B, T, N, N, SIZES.hidden)).astype("float32")
    w1, b1, w2, b2 = (np.asarray(v.numpy(), dtype=np.float64) for v in head.weights)
    hidden = np.maximum(state.reshape(B * T, -1) @ w1 + b1, 0)
    masks = (np.arange(2 ** SIZES.dense)[:, None] >> np.arange(SIZES.dense)) & 1  # (64, 6)
    logits = (masks[None] * hidden[:, None] / (1 - SIZES.dropout)) @ w2 + b2
    candidates = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    scores = np.asarray(head(state, training=True), dtype=np.float64).reshape(B * T, 1, -1)
    distance = np.abs(candidates - scores).max(axis=-1)
    assert distance.min(axis=1).max() < 1e-5
    kept = masks[distance.argmin(axis=1)]
    assert 0 < kept.mean() < 1  # units were dropped and kept


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


@pytest.mark.parametrize("arch, attention", [("alstm", "appearance"), ("alstm", "motion"),
                                             ("convalstm", "appearance"), ("videolstm", "motion")])
def test_a_new_model_attends_uniformly_and_its_score_kernel_learns_at_once(arch, attention):
    """W_z starts at zero: every map is 1 / N^2 until training moves W_z, which the class loss
    reaches from the first step."""
    model = build(arch, attention, trained_scores=False)
    rng = np.random.default_rng(8)
    inputs = inputs_for(model, rng)
    np.testing.assert_allclose(np.asarray(model(inputs)["attention"]), 1.0 / N ** 2, atol=1e-7)
    w_z = model.get_layer("recurrent").cell.attention_score_kernel
    (grad,) = class_loss_gradients(model, [w_z], rng)
    assert np.abs(np.asarray(grad)).max() > 0


def test_every_weight_of_videolstm_learns_from_the_class_loss():
    """The bottom layer gets gradient only through the attention: it must be wired in."""
    assert_every_weight_learns(build("videolstm"), seed=6)


def class_loss_gradients(model, variables, rng) -> list:
    """Gradients of the class loss with respect to ``variables`` on random inputs and labels."""
    inputs = inputs_for(model, rng)
    labels = rng.integers(0, N_CLASSES, size=(B, T))
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs, training=True)["scores"])
    return tape.gradient(loss, variables)


def assert_every_weight_learns(model, seed: int) -> None:
    """Every trainable weight gets a nonzero gradient of the class loss on random inputs."""
    grads = class_loss_gradients(model, model.trainable_variables, np.random.default_rng(seed))
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
    assert ModelSizes() == ModelSizes(hidden=512, attention=512, kernel=3, attention_kernel=1,
                                      dense=1024, dropout=0.7)
    # where the paper is silent the defaults are this project's, not the authors'
    assert (ModelSizes().initial_state, ModelSizes().dense_activation,
            ModelSizes().alstm_motion_input) == ("zero", "relu", "pool5")


@pytest.mark.parametrize("setting, value", [
    ("hidden", 0), ("hidden", 2.5), ("attention", 0), ("kernel", 2), ("kernel", -3),
    ("attention_kernel", 0), ("dense", True), ("dropout", 1.0), ("dropout", -0.1),
    ("initial_state", "learned"), ("dense_activation", "sigmoid"), ("alstm_motion_input", "fc6")])
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


# Settings where the paper is silent; the authors' code chose mean / tanh / fc7.

MEAN = dataclasses.replace(SIZES, initial_state="mean")
TANH = dataclasses.replace(SIZES, dense_activation="tanh")
FC7_MOTION = dataclasses.replace(SIZES, alstm_motion_input="fc7")
AUTHORS = dataclasses.replace(SIZES, initial_state="mean", dense_activation="tanh",
                              alstm_motion_input="fc7")
SETTING_VARIANTS = [
    ("alstm", "appearance", MEAN), ("alstm", "motion", MEAN), ("convalstm", "appearance", MEAN),
    ("videolstm", "motion", MEAN), ("convlstm", "appearance", TANH), ("lstm", "appearance", TANH),
    ("alstm", "motion", FC7_MOTION), ("alstm", "motion", AUTHORS), ("videolstm", "motion", AUTHORS)]


def test_the_tanh_head_matches_numpy():
    model = build("convlstm", sizes=TANH)
    head = model.get_layer("head")
    assert head.get_config()["activation"] == "tanh"
    rng = np.random.default_rng(21)
    state = rng.normal(size=(B, T, N, N, SIZES.hidden)).astype("float32")
    w1, b1, w2, b2 = (np.asarray(v.numpy(), dtype=np.float64) for v in head.weights)
    logits = np.tanh(state.reshape(B, T, -1) @ w1 + b1) @ w2 + b2
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(head(state)), expected, atol=1e-5)
    relu = build("convlstm").get_layer("head")
    relu.set_weights(head.get_weights())
    assert np.abs(np.asarray(relu(state)) - expected).max() > 1e-4


def test_the_alstm_reads_a_flow_vector_with_fc7_motion():
    """The bottom LSTM's input kernel is (Dm, 4 * hidden) for a (B, T, Dm) flow vector, not the
    flattened (N * N * Dm, 4 * hidden) map; ConvALSTM and VideoLSTM still read the flow map."""
    model = build("alstm", "motion", sizes=FC7_MOTION)
    assert tuple(model.input["motion"].shape) == (None, None, FC7)
    cell = model.get_layer("recurrent").cell
    assert tuple(cell.motion_kernel.shape) == (FC7, 4 * SIZES.hidden)
    assert tuple(build("alstm", "motion").get_layer("recurrent").cell.motion_kernel.shape) == (
        N * N * DM, 4 * SIZES.hidden)
    videolstm = build("videolstm", sizes=FC7_MOTION)
    assert tuple(videolstm.input["motion"].shape) == (None, None, N, N, DM)
    with pytest.raises(ValueError, match=r"motion_shape .*\(Dm,\)"):
        build_model("alstm", N_CLASSES, (N, N, D), FC7_MOTION, "motion", (N, N, DM))
    with pytest.raises(ValueError, match="motion_shape"):
        build_model("videolstm", N_CLASSES, (N, N, D), FC7_MOTION, "motion", (FC7,))


def test_mean_initial_states_come_from_the_sequence_mean():
    """The model's first scores equal the head on one cell step from the states that
    tanh(W * mean_t X + b) gives (the cell's own computation, checked against NumPy in
    test_cells), and depend on every frame of the sequence through that mean."""
    model = build("videolstm", sizes=MEAN)
    rng = np.random.default_rng(22)
    inputs = inputs_for(model, rng)
    layer = model.get_layer("recurrent")
    sequences = [inputs["features"], inputs["motion"]]
    states = layer.get_initial_state(B, sequences)
    (hidden, attention), _ = layer.cell([inputs["features"][:, 0], inputs["motion"][:, 0]], states)
    out = model(inputs)
    np.testing.assert_allclose(np.asarray(out["scores"][:, 0]),
                               np.asarray(model.get_layer("head")(hidden)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["attention"][:, 0]), np.asarray(attention),
                               atol=1e-6)
    changed = dict(inputs, features=inputs["features"].copy())
    changed["features"][:, -1] += 1.0
    assert np.abs(np.asarray(model(changed)["scores"][:, 0] - out["scores"][:, 0])).max() > 1e-5


@pytest.mark.parametrize("arch", ["lstm", "convlstm"])
def test_plain_lstms_start_from_zero_whatever_the_setting(arch):
    """As in the authors' code, only the attending models' states are mean-initialised."""
    model, plain = build(arch, sizes=MEAN), build(arch)
    assert [v.shape for v in model.weights] == [v.shape for v in plain.weights]
    assert FrameStepper(model).initial_state == "zero"


@pytest.mark.parametrize("arch, attention, sizes", SETTING_VARIANTS)
def test_keras_file_round_trip_keeps_the_settings(arch, attention, sizes, tmp_path):
    model = build(arch, attention, sizes=sizes)
    inputs = inputs_for(model, np.random.default_rng(23))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    expected, got = model(inputs), loaded(inputs)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(expected[key]))
    assert loaded.get_layer("head").get_config()["activation"] == sizes.dense_activation
    if arch in ATTENDING:
        assert loaded.get_layer("recurrent").cell.initial_state == sizes.initial_state
    assert tuple(loaded.input["motion"].shape[2:] if "motion" in loaded.input else ()) == \
        tuple(model.input["motion"].shape[2:] if "motion" in model.input else ())


@pytest.mark.parametrize("arch, attention, sizes", [
    ("alstm", "motion", FC7_MOTION), ("convlstm", "appearance", TANH),
    ("videolstm", "motion", TANH)])
def test_streaming_is_exact_with_zero_states_under_the_other_settings(arch, attention, sizes):
    model = build(arch, attention, sizes=sizes)
    inputs = inputs_for(model, np.random.default_rng(24))
    full = model(inputs)
    stepper = FrameStepper(model)
    assert stepper.motion_shape == (tuple(model.input["motion"].shape[2:])
                                    if "motion" in model.input else None)
    states = stepper.initial_states(B)
    for t in range(T):
        scores, _, states = stepper.step({k: v[:, t] for k, v in inputs.items()}, states)
        np.testing.assert_allclose(np.asarray(scores), np.asarray(full["scores"][:, t]),
                                   atol=1e-5)


@pytest.mark.parametrize("arch, attention, sizes", [
    ("alstm", "appearance", MEAN), ("alstm", "motion", AUTHORS), ("convalstm", "appearance", MEAN),
    ("videolstm", "motion", MEAN)])
def test_streaming_with_mean_states_starts_from_the_frames_available(arch, attention, sizes):
    """Mean states: given the frames available at the start, the stream equals the model run on
    a sequence with that mean; without them the first step initialises from its own frame, so
    the stream equals the model started from frame 0 alone and differs from the whole-sequence
    run."""
    model = build(arch, attention, sizes=sizes)
    rng = np.random.default_rng(25)
    inputs = inputs_for(model, rng)
    frame = lambda t: {k: v[:, t] for k, v in inputs.items()}  # noqa: E731
    full = model(inputs)
    stepper = FrameStepper(model)
    assert stepper.initial_state == "mean"

    states = stepper.initial_states(B, inputs)  # the whole sequence is available
    for t in range(T):
        scores, attention_t, states = stepper.step(frame(t), states)
        np.testing.assert_allclose(np.asarray(scores), np.asarray(full["scores"][:, t]),
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(attention_t), np.asarray(full["attention"][:, t]),
                                   atol=1e-5)

    pending = stepper.initial_states(B)  # a live stream: nothing seen yet
    assert len(pending) == (4 if uses_motion(arch, attention) else 2)
    first = stepper.initial_states(B, {k: v[:, :1] for k, v in inputs.items()})
    streamed, explicit = [], []
    for t in range(T):
        scores, _, pending = stepper.step(frame(t), pending)
        streamed.append(np.asarray(scores))
        scores, _, first = stepper.step(frame(t), first)
        explicit.append(np.asarray(scores))
    np.testing.assert_allclose(np.stack(streamed), np.stack(explicit), atol=1e-6)
    one_frame = model({k: v[:, :1] for k, v in inputs.items()})
    np.testing.assert_allclose(streamed[0], np.asarray(one_frame["scores"][:, 0]), atol=1e-5)
    assert np.abs(streamed[0] - np.asarray(full["scores"][:, 0])).max() > 1e-5


def test_streaming_mean_states_use_the_normalised_inputs():
    rng = np.random.default_rng(26)
    x = rng.normal(3.0, 2.0, size=(2, 4, 3, 3, 5)).astype(np.float32)
    m = rng.normal(-1.0, 0.5, size=(2, 4, 3, 3, 2)).astype(np.float32)
    stats = {"features": (np.full(5, 3.0), np.full(5, 4.0)),
             "motion": (np.full(2, -1.0), np.full(2, 0.25))}
    model = build_model("videolstm", 3, (3, 3, 5), MEAN, motion_shape=(3, 3, 2),
                        normalization=stats)
    inputs = {"features": x, "motion": m}
    want = model.predict_on_batch(inputs)["scores"]
    stepper = FrameStepper(model)
    states = stepper.initial_states(2, inputs)
    for t in range(4):
        scores, _, states = stepper.step({"features": x[:, t], "motion": m[:, t]}, states)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(scores), want[:, t],
                                   rtol=1e-4, atol=1e-6)


def test_every_weight_of_the_mean_initialised_videolstm_learns():
    model = build("videolstm", sizes=AUTHORS)
    assert any("initial_motion_hidden_kernel" in v.path for v in model.trainable_variables)
    assert_every_weight_learns(model, seed=27)


@pytest.mark.parametrize("arch", ["alstm", "convalstm", "videolstm"])
def test_the_attention_has_its_own_width(arch):
    """W_xa, W_ha and b_a have ``attention`` output channels and W_z reads them (Eq. 7), apart
    from the LSTM's ``hidden`` width."""
    cell = build(arch, "motion").get_layer("recurrent").cell
    assert cell.attention_input_kernel.shape[-1] == SIZES.attention != SIZES.hidden
    assert cell.attention_state_kernel.shape[-2:] == (SIZES.hidden, SIZES.attention)
    assert cell.attention_bias.shape == (SIZES.attention,)
    assert cell.attention_score_kernel.shape[-2:] == (SIZES.attention, 1)
    assert cell.recurrent_kernel.shape[-2:] == (SIZES.hidden, 4 * SIZES.hidden)


def test_the_model_config_section_passes_the_settings_through():
    from pipeline import config
    sizes = config.model(attention=96, initial_state="mean", dense_activation="tanh",
                         alstm_motion_input="fc7").sizes()
    assert (sizes.attention, sizes.initial_state, sizes.dense_activation,
            sizes.alstm_motion_input) == (96, "mean", "tanh", "fc7")
    with pytest.raises(config.ConfigError, match=r"\[model\] ModelSizes.initial_state .*'mu'"):
        config.model(initial_state="mu").sizes()


def test_the_paper_profile_follows_the_authors_where_the_paper_is_silent():
    from pipeline import config
    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parents[1] / "configs" / "paper.cfg")
    sizes = config.model.from_str_params(dict(parser["model"])).sizes()
    assert sizes == ModelSizes(initial_state="mean", dense_activation="tanh",
                               alstm_motion_input="fc7")
