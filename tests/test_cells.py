"""The attention cells against a NumPy transcription of the paper's equations (Sec. 3), and the
initial states the paper leaves open (zero, or from the input's mean as in the authors' code)."""

import keras
import numpy as np
import pytest

from models.cells import AttentionLSTMCell, AttentionRNN, ConvAttentionLSTMCell

B, N, D, DM, HIDDEN, ATTENTION = 2, 4, 3, 2, 2, 5
FC7 = 6  # length of a flow vector (fc7-like) for the ALSTM's motion layer


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


def make_cell(kind, motion, attention_kernel=1, initial_state="zero"):
    """kind: "conv" (ConvALSTM / VideoLSTM cell), "vector" (ALSTM; motion from a flow map) or
    "vector-fc7" (ALSTM; motion from a flow vector)."""
    if kind == "conv":
        return ConvAttentionLSTMCell(HIDDEN, ATTENTION, 3, attention_kernel, motion=motion,
                                     initial_state=initial_state)
    return AttentionLSTMCell(HIDDEN, ATTENTION, motion=motion, initial_state=initial_state)


def motion_frame_shape(kind, n=N):
    return (FC7,) if kind == "vector-fc7" else (n, n, DM)


def built_cell(kind, motion, rng, attention_kernel=1, n=N, initial_state="zero"):
    cell = make_cell(kind, motion, attention_kernel, initial_state)
    x_shape = (B, n, n, D)
    cell.build([x_shape, (B, *motion_frame_shape(kind, n))] if motion else x_shape)
    randomize(cell, rng)
    return cell


def random_step_inputs(kind, motion, rng, n=N):
    x = rng.normal(size=(B, n, n, D))
    m = rng.normal(size=(B, *motion_frame_shape(kind, n))) if motion else None
    state_shape = (B, n, n, HIDDEN) if kind == "conv" else (B, HIDDEN)
    states = [rng.normal(size=state_shape) for _ in range(4 if motion else 2)]
    return x, m, states


def run_cell(cell, x, m, states):
    inputs = [x.astype("float32"), m.astype("float32")] if cell.motion else x.astype("float32")
    (h, a), new_states = cell(inputs, [s.astype("float32") for s in states])
    return np.asarray(h), np.asarray(a), [np.asarray(s) for s in new_states]


@pytest.mark.parametrize("kind, motion, attention_kernel", [
    ("vector", False, 1), ("vector", True, 1), ("vector-fc7", True, 1),
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


@pytest.mark.parametrize("kind", ["vector", "vector-fc7", "conv"])
def test_motion_attention_uses_the_current_flow(kind):
    rng = np.random.default_rng(3)
    cell = built_cell(kind, True, rng)
    x, m, states = random_step_inputs(kind, True, rng)
    _, a, _ = run_cell(cell, x, m, states)
    _, a_other, _ = run_cell(cell, x, m + rng.normal(size=m.shape), states)
    assert np.abs(a - a_other).max() > 1e-4


@pytest.mark.parametrize("kind", ["vector", "vector-fc7", "conv"])
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
    for cell in (make_cell("vector", True), make_cell("conv", True, 3),
                 make_cell("vector", True, initial_state="mean"),
                 make_cell("conv", True, 3, initial_state="mean")):
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
    with pytest.raises(ValueError, match="initial_state"):
        AttentionLSTMCell(2, 2, initial_state="learned")
    with pytest.raises(ValueError, match="flow map"):  # the conv cell convolves M_t: no vector
        ConvAttentionLSTMCell(2, 2, 3, 1, motion=True).build([(B, 4, 4, D), (B, FC7)])


# Initial states. The authors' code (after Xu et al.) starts each sequence from
# H_0 = tanh(W_h0 * mean_t X_t + b_h0) and C_0 with its own weights: a 3 x 3 convolution of the
# mean pool5 map for the conv cells' top layer, a 1 x 1 one of the mean flow map for the bottom
# layer, and for the ALSTM dense layers of the mean region vector (over time and space) and of
# the mean motion input (the flow vector, or the flattened flow map).

def mean_initial_states_reference(kind, w, x_seq, m_seq):
    """NumPy: the initial states from X (B, T, N, N, D) and M (B, T, ...) or None."""
    x_mean = x_seq.mean(axis=1)
    if kind == "conv":
        top = [np.tanh(conv_same(x_mean, w[f"initial_{name}_kernel"]) + w[f"initial_{name}_bias"])
               for name in ("hidden", "memory")]
    else:
        region = x_mean.mean(axis=(1, 2))
        top = [np.tanh(region @ w[f"initial_{name}_kernel"] + w[f"initial_{name}_bias"])
               for name in ("hidden", "memory")]
    if m_seq is None:
        return top
    m_mean = m_seq.mean(axis=1)
    if kind == "conv":
        assert w["initial_motion_hidden_kernel"].shape[:2] == (1, 1)
        bottom = [np.tanh(conv_same(m_mean, w[f"initial_motion_{name}_kernel"])
                          + w[f"initial_motion_{name}_bias"]) for name in ("hidden", "memory")]
    else:
        m_vec = m_mean.reshape(m_mean.shape[0], -1)
        bottom = [np.tanh(m_vec @ w[f"initial_motion_{name}_kernel"]
                          + w[f"initial_motion_{name}_bias"]) for name in ("hidden", "memory")]
    return top + bottom


def random_sequences(kind, motion, rng, t=4):
    x = rng.normal(1.0, 1.0, size=(B, t, N, N, D)).astype("float32")
    m = (rng.normal(-0.5, 1.0, size=(B, t, *motion_frame_shape(kind))).astype("float32")
         if motion else None)
    return x, m


MEAN_CELLS = [("vector", False), ("vector", True), ("vector-fc7", True), ("conv", False),
              ("conv", True)]


@pytest.mark.parametrize("kind, motion", MEAN_CELLS)
def test_mean_initial_states_match_numpy(kind, motion):
    rng = np.random.default_rng(11)
    cell = built_cell(kind, motion, rng, initial_state="mean")
    x, m = random_sequences(kind, motion, rng)
    states = cell.get_initial_state(B, [x, m] if motion else x)
    want = mean_initial_states_reference(kind, weights_of(cell), x, m)
    assert len(states) == len(want) == (4 if motion else 2)
    for got, expected in zip(states, want):
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)
    # H_0 and C_0 have weights of their own
    assert np.abs(np.asarray(states[0]) - np.asarray(states[1])).max() > 1e-3


@pytest.mark.parametrize("kind, motion", MEAN_CELLS)
def test_sequence_layer_starts_from_the_mean_states(kind, motion):
    """AttentionRNN with mean states equals stepping the cell (itself checked against Eq. 1-15)
    from the NumPy initial states of the same T frames."""
    rng = np.random.default_rng(12)
    cell = built_cell(kind, motion, rng, initial_state="mean")
    x, m = random_sequences(kind, motion, rng)
    hidden, attention = AttentionRNN(cell)([x, m] if motion else x)
    states = mean_initial_states_reference(kind, weights_of(cell), x, m)
    for t in range(x.shape[1]):
        h, a, states = run_cell(cell, x[:, t], m[:, t] if motion else None, states)
        np.testing.assert_allclose(np.asarray(hidden[:, t]), h, atol=1e-5)
        np.testing.assert_allclose(np.asarray(attention[:, t]), a, atol=1e-6)


def test_mean_states_follow_the_whole_sequence():
    """The first frame's output depends on later frames through the mean (not so from zeros)."""
    rng = np.random.default_rng(13)
    x, m = random_sequences("conv", True, rng)
    later = x.copy()
    later[:, 1:] += rng.normal(size=later[:, 1:].shape).astype("float32")
    for initial_state, changes in (("mean", True), ("zero", False)):
        layer = AttentionRNN(built_cell("conv", True, np.random.default_rng(1),
                                        initial_state=initial_state))
        first, first_later = (np.asarray(layer([seq, m])[0][:, 0]) for seq in (x, later))
        assert (np.abs(first - first_later).max() > 1e-4) == changes


@pytest.mark.parametrize("kind", ["vector", "conv"])
def test_zero_states_are_unchanged_by_the_setting(kind):
    """initial_state="zero" (the default) adds no weights and ignores the sequence: the cell is
    the one it was before the setting existed."""
    rng = np.random.default_rng(14)
    cell = built_cell(kind, True, rng)
    assert cell.initial_state == "zero"
    assert not any("initial" in v.path for v in cell.weights)
    x, m = random_sequences(kind, True, rng)
    for states in (cell.get_initial_state(B), cell.get_initial_state(B, [x, m])):
        assert [np.asarray(s).shape for s in states] == [
            (B, N, N, HIDDEN) if kind == "conv" else (B, HIDDEN)] * 4
        assert all((np.asarray(s) == 0).all() for s in states)
    mean = built_cell(kind, True, rng, initial_state="mean")
    plain = [v.path.split("/")[-1] for v in cell.weights]
    assert [v.path.split("/")[-1] for v in mean.weights][:len(plain)] == plain


def test_mean_states_need_the_sequence():
    cell = built_cell("conv", False, np.random.default_rng(15), initial_state="mean")
    with pytest.raises(ValueError, match="sequence"):
        cell.get_initial_state(B)
