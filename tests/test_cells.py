"""The attention cells against a NumPy transcription of the paper's equations (Sec. 3)."""

import keras
import numpy as np
import pytest

from models.cells import AttentionLSTMCell, AttentionRNN, ConvAttentionLSTMCell

B, N, D, DM, HIDDEN, ATTENTION = 2, 4, 3, 2, 2, 5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def conv_same(x, w):
    """Zero-padded, stride-1 2-d correlation: x (B, N1, N2, C), w (k, k, C, O)."""
    k = w.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros(x.shape[:3] + (w.shape[3],))
    for di in range(k):
        for dj in range(k):
            out += padded[:, di:di + x.shape[1], dj:dj + x.shape[2], :] @ w[di, dj]
    return out


def gate_slices(units):
    """Gate name -> slice of the stacked [i, f, o, g] axis."""
    return {name: slice(j * units, (j + 1) * units) for j, name in enumerate("ifog")}


def lstm_equations(transform, bias, c_prev, units):
    """Eq. 1-6 (and 10-15): ``transform(gate_slice)`` sums the gate's input terms."""
    s = gate_slices(units)
    i = sigmoid(transform(s["i"]) + bias[s["i"]])
    f = sigmoid(transform(s["f"]) + bias[s["f"]])
    o = sigmoid(transform(s["o"]) + bias[s["o"]])
    g = np.tanh(transform(s["g"]) + bias[s["g"]])
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def weights_of(cell):
    return {v.path.split("/")[-1]: np.asarray(v.numpy(), dtype=np.float64) for v in cell.weights}


def randomize(cell, rng):
    for v in cell.weights:
        v.assign(rng.normal(scale=0.5, size=v.shape).astype("float32"))


def conv_alstm_reference(w, x, m, states, motion):
    """One step of Eq. 7-9 + 1-6, with Eq. 10-15 first when ``motion``."""
    h_prev, c_prev = states[:2]
    if motion:
        hm_prev, cm_prev = states[2:]
        hm, cm = lstm_equations(
            lambda s: (conv_same(m, w["motion_kernel"][..., s])
                       + conv_same(hm_prev, w["motion_recurrent_kernel"][..., s])
                       + conv_same(h_prev, w["motion_top_kernel"][..., s])),
            w["motion_bias"], cm_prev, HIDDEN)
        query = hm
    else:
        query = h_prev
    z = conv_same(np.tanh(conv_same(x, w["attention_input_kernel"])
                          + conv_same(query, w["attention_state_kernel"])
                          + w["attention_bias"]), w["attention_score_kernel"])[..., 0]
    a = np.exp(z) / np.exp(z).sum(axis=(1, 2), keepdims=True)
    x_tilde = a[..., None] * x
    h, c = lstm_equations(
        lambda s: conv_same(x_tilde, w["kernel"][..., s])
        + conv_same(h_prev, w["recurrent_kernel"][..., s]),
        w["bias"], c_prev, HIDDEN)
    return h, c, a, ([hm, cm] if motion else [])


def alstm_reference(w, x, m, states, motion):
    """One ALSTM step: e^i = w^T tanh(W_x x^i + W_h q + b), softmax, LSTM on sum_i a^i x^i."""
    h_prev, c_prev = states[:2]
    if motion:
        hm_prev, cm_prev = states[2:]
        m_vec = m.reshape(m.shape[0], -1)
        hm, cm = lstm_equations(
            lambda s: (m_vec @ w["motion_kernel"][:, s]
                       + hm_prev @ w["motion_recurrent_kernel"][:, s]
                       + h_prev @ w["motion_top_kernel"][:, s]),
            w["motion_bias"], cm_prev, HIDDEN)
        query = hm
    else:
        query = h_prev
    a = np.zeros(x.shape[:3])
    x_hat = np.zeros((x.shape[0], x.shape[3]))
    for b in range(x.shape[0]):
        e = np.zeros(x.shape[1:3])
        for r in range(x.shape[1]):
            for col in range(x.shape[2]):
                e[r, col] = (np.tanh(x[b, r, col] @ w["attention_input_kernel"]
                                     + query[b] @ w["attention_state_kernel"]
                                     + w["attention_bias"]) @ w["attention_score_kernel"])[0]
        a[b] = np.exp(e) / np.exp(e).sum()
        x_hat[b] = (a[b][..., None] * x[b]).sum(axis=(0, 1))
    h, c = lstm_equations(
        lambda s: x_hat @ w["kernel"][:, s] + h_prev @ w["recurrent_kernel"][:, s],
        w["bias"], c_prev, HIDDEN)
    return h, c, a, ([hm, cm] if motion else [])


def make_cell(kind, motion, attention_kernel=1):
    if kind == "conv":
        return ConvAttentionLSTMCell(HIDDEN, ATTENTION, 3, attention_kernel, motion=motion)
    return AttentionLSTMCell(HIDDEN, ATTENTION, motion=motion)


def built_cell(kind, motion, rng, attention_kernel=1, n=N):
    cell = make_cell(kind, motion, attention_kernel)
    x_shape = (B, n, n, D)
    cell.build([x_shape, (B, n, n, DM)] if motion else x_shape)
    randomize(cell, rng)
    return cell


def random_step_inputs(kind, motion, rng, n=N):
    x = rng.normal(size=(B, n, n, D))
    m = rng.normal(size=(B, n, n, DM)) if motion else None
    state_shape = (B, n, n, HIDDEN) if kind == "conv" else (B, HIDDEN)
    states = [rng.normal(size=state_shape) for _ in range(4 if motion else 2)]
    return x, m, states


def run_cell(cell, x, m, states):
    inputs = [x.astype("float32"), m.astype("float32")] if cell.motion else x.astype("float32")
    (h, a), new_states = cell(inputs, [s.astype("float32") for s in states])
    return np.asarray(h), np.asarray(a), [np.asarray(s) for s in new_states]


@pytest.mark.parametrize("kind, motion, attention_kernel", [
    ("vector", False, 1), ("vector", True, 1),
    ("conv", False, 1), ("conv", False, 3), ("conv", True, 1), ("conv", True, 3)])
def test_one_step_matches_the_equations(kind, motion, attention_kernel):
    rng = np.random.default_rng(7)
    cell = built_cell(kind, motion, rng, attention_kernel)
    x, m, states = random_step_inputs(kind, motion, rng)
    h, a, new_states = run_cell(cell, x, m, states)
    reference = conv_alstm_reference if kind == "conv" else alstm_reference
    h_ref, c_ref, a_ref, bottom_ref = reference(weights_of(cell), x, m, states, motion)
    np.testing.assert_allclose(a, a_ref, atol=1e-5)
    np.testing.assert_allclose(h, h_ref, atol=1e-5)
    np.testing.assert_allclose(new_states[0], h_ref, atol=1e-5)
    np.testing.assert_allclose(new_states[1], c_ref, atol=1e-5)
    assert len(new_states) == 2 + len(bottom_ref)
    for got, want in zip(new_states[2:], bottom_ref):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("kind", ["vector", "conv"])
@pytest.mark.parametrize("n", [3, 5, 7])
def test_attention_is_a_distribution_over_locations(kind, n):
    rng = np.random.default_rng(n)
    cell = built_cell(kind, True, rng, n=n)
    x, m, states = random_step_inputs(kind, True, rng, n=n)
    _, a, _ = run_cell(cell, 3 * x, m, states)
    assert a.shape == (B, n, n)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(axis=(1, 2)), 1.0, atol=1e-6)
    assert a.std() > 1e-3  # random weights give a non-uniform map


@pytest.mark.parametrize("kind", ["vector", "conv"])
def test_motion_attention_uses_the_current_flow(kind):
    rng = np.random.default_rng(3)
    cell = built_cell(kind, True, rng)
    x, m, states = random_step_inputs(kind, True, rng)
    _, a, _ = run_cell(cell, x, m, states)
    _, a_other, _ = run_cell(cell, x, m + rng.normal(size=m.shape), states)
    assert np.abs(a - a_other).max() > 1e-4


@pytest.mark.parametrize("kind", ["vector", "conv"])
def test_bottom_layer_reaches_the_top_only_through_attention(kind):
    """With W_z = 0 the attention is uniform; then the flow and the bottom layer's states must
    leave the top layer's H_t and C_t unchanged while H^m_t changes."""
    rng = np.random.default_rng(4)
    cell = built_cell(kind, True, rng)
    cell.attention_score_kernel.assign(np.zeros(cell.attention_score_kernel.shape, "float32"))
    x, m, states = random_step_inputs(kind, True, rng)
    _, a, new = run_cell(cell, x, m, states)
    other_states = states[:2] + [s + rng.normal(size=s.shape) for s in states[2:]]
    _, _, other = run_cell(cell, x, m + rng.normal(size=m.shape), other_states)
    np.testing.assert_allclose(a, 1.0 / N ** 2, atol=1e-7)
    np.testing.assert_allclose(other[0], new[0], atol=1e-6)
    np.testing.assert_allclose(other[1], new[1], atol=1e-6)
    assert np.abs(other[2] - new[2]).max() > 1e-3


@pytest.mark.parametrize("kind, motion", [("vector", False), ("conv", True)])
def test_sequence_layer_chains_the_steps(kind, motion):
    """AttentionRNN over T frames equals stepping the cell from zero states."""
    rng = np.random.default_rng(5)
    cell = built_cell(kind, motion, rng)
    layer = AttentionRNN(cell)
    x = rng.normal(size=(B, 4, N, N, D)).astype("float32")
    m = rng.normal(size=(B, 4, N, N, DM)).astype("float32")
    hidden, attention = layer([x, m] if motion else x)
    states = [np.asarray(s) for s in cell.get_initial_state(B)]
    assert all((s == 0).all() for s in states)
    for t in range(x.shape[1]):
        h, a, states = run_cell(cell, x[:, t], m[:, t], states)
        np.testing.assert_allclose(np.asarray(hidden[:, t]), h, atol=1e-5)
        np.testing.assert_allclose(np.asarray(attention[:, t]), a, atol=1e-6)


def test_cells_round_trip_their_config():
    for cell in (make_cell("vector", True), make_cell("conv", True, 3)):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
        assert type(clone) is type(cell)
        assert clone.get_config() == cell.get_config()


def test_bad_cell_settings_are_named():
    with pytest.raises(ValueError, match="kernel_size"):
        ConvAttentionLSTMCell(2, 2, 2, 1)
    with pytest.raises(ValueError, match="units"):
        AttentionLSTMCell(0, 2)
    for cell in (ConvAttentionLSTMCell(2, 2, 3, 1, motion=True), AttentionLSTMCell(2, 2, True)):
        with pytest.raises(ValueError, match="grid"):
            cell.build([(B, 4, 4, D), (B, 5, 5, DM)])
