"""Recurrent cells with spatial soft attention (paper Sec. 3) and the layer that runs them over
time.

``AttentionLSTMCell`` is the ALSTM of Sharma et al. / Xu et al.: an MLP scores the N x N region
vectors of a pool5 map and the LSTM reads their expectation. ``ConvAttentionLSTMCell`` is the
Convolutional ALSTM (Eq. 1-9). With ``motion=True`` either cell adds the bottom layer of
Sec. 3.2 (Eq. 10-15), an LSTM on the flow map whose current hidden state, not the top layer's
previous one, drives the attention; the conv cell with motion is the VideoLSTM cell.

A cell's step is ``cell(inputs_t, states) -> ((hidden_t, attention_t), new_states)``; states are
``[H, C]`` (top layer) followed by ``[H^m, C^m]`` (bottom layer) for motion cells, and the flow
map M_t must share X_t's N x N grid (the ALSTM's bottom layer may instead read a flow vector,
e.g. fc7, per frame). All gate kernels and biases stack the gates on their last axis in the
paper's order [i, f, o, g] (Eq. 1-4). Because a step emits two tensors, the cells run in
``AttentionRNN`` rather than ``keras.layers.RNN``.

Initial states (the paper is silent): ``initial_state="zero"`` starts every sequence from
zeros; ``"mean"`` follows Xu et al. and the authors' code: each state is tanh of a learned
transform of the mean over time of the sequence, with separate weights for H_0 and C_0:

- top layer, conv cell: H_0 = tanh(W_h0 * mean_t X_t + b_h0), W_h0 of the cell's kernel_size
  (3 x 3 in the paper); C_0 likewise with W_c0, b_c0;
- top layer, ALSTM: H_0 = tanh(W_h0 mean_{t,i} x^i_t + b_h0), the mean region vector over time
  and space; C_0 likewise;
- bottom (motion) layer, conv cell: H^m_0 = tanh(W^m_h0 * mean_t M_t + b^m_h0) with a 1 x 1
  kernel (the authors'); C^m_0 likewise;
- bottom layer, ALSTM: a dense layer of the mean over time of what the bottom LSTM reads per
  frame (the flattened flow map, or the flow vector).

The score kernel W_z (w for the ALSTM) starts at zero (the paper is silent; the authors' code
draws it at random), so every attention map starts uniform and forms from the class loss alone:
W_z learns from the first step, the rest of the attention from the second. A random W_z gives
each training seed its own initial preference for some regions, and on the embedded dataset
training reinforced it: on held-back training videos VideoLSTM's attention found the actor on
one training seed of three and avoided it on another (README, "Replication").
"""

from __future__ import annotations

import math

import keras
from keras import ops

from models.sizes import INITIAL_STATES, choice, odd_kernel, positive_int

SERIALIZATION_PACKAGE = "videolstm"


def lstm_update(gates, c_prev):
    """New (hidden, memory) from gate pre-activations stacked [i, f, o, g] on the last axis and
    the previous memory (Eq. 1-6 and 10-15; the same element-wise update for vectors and maps)."""
    i, f, o, g = ops.split(gates, 4, axis=-1)
    c = ops.sigmoid(f) * c_prev + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def spatial_softmax(scores):
    """Attention map A (batch, N1, N2) from a score map Z of the same shape: a softmax over the
    N1*N2 locations (Eq. 8), so each map is non-negative and sums to 1."""
    n1, n2 = scores.shape[1], scores.shape[2]
    flat = ops.softmax(ops.reshape(scores, (-1, n1 * n2)), axis=-1)
    return ops.reshape(flat, (-1, n1, n2))


def _forget_bias_one(shape, dtype=None):
    """Gate bias [i, f, o, g] with the forget quarter at 1 (Keras' unit_forget_bias)."""
    units = shape[-1] // 4
    return ops.concatenate([ops.zeros((units,), dtype), ops.ones((units,), dtype),
                            ops.zeros((2 * units,), dtype)])


class _AttentionCell(keras.layers.Layer):
    """The step shared by both cells: the bottom motion layer (Eq. 10-15) when ``motion``, the
    attention on X_t queried by H^m_t or else H_{t-1}, and the top LSTM (Eq. 1-6). Subclasses
    supply the transforms (matrix product or convolution) and how attention weighs X_t."""

    def __init__(self, units: int, attention_units: int, motion: bool = False,
                 initial_state: str = "zero", **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.attention_units = positive_int(attention_units, "attention_units")
        self.motion = bool(motion)
        self.initial_state = choice(initial_state, "initial_state", INITIAL_STATES)

    def build(self, input_shape):
        """input_shape: (B, N1, N2, D), or [(B, N1, N2, D), (B, N1, N2, Dm)] with motion (the
        ALSTM also takes a flow vector (B, Dm))."""
        x_shape, m_shape = input_shape if self.motion else (input_shape, None)
        n1, n2, depth = x_shape[1:]
        self.spatial = (n1, n2)
        u, a = self.units, self.attention_units
        self.kernel = self._gate_kernel(depth, "glorot_uniform", "kernel")
        self.recurrent_kernel = self._gate_kernel(u, "orthogonal", "recurrent_kernel")
        self.bias = self.add_weight((4 * u,), _forget_bias_one, name="bias")
        self.attention_input_kernel = self._attention_kernel(depth, a, "attention_input_kernel")
        self.attention_state_kernel = self._attention_kernel(u, a, "attention_state_kernel")
        self.attention_bias = self.add_weight((a,), "zeros", name="attention_bias")
        self.attention_score_kernel = self._attention_kernel(a, 1, "attention_score_kernel",
                                                             "zeros")
        if self.motion:
            self._check_motion_shape(tuple(m_shape))
            self.motion_kernel = self._gate_kernel(
                self._motion_size(m_shape), "glorot_uniform", "motion_kernel")
            self.motion_recurrent_kernel = self._gate_kernel(
                u, "orthogonal", "motion_recurrent_kernel")
            self.motion_top_kernel = self._gate_kernel(u, "glorot_uniform", "motion_top_kernel")
            self.motion_bias = self.add_weight((4 * u,), _forget_bias_one, name="motion_bias")
        if self.initial_state == "mean":  # created last: zero-state cells keep their weights
            shape = self._initial_kernel_shape(depth)
            self.initial_hidden_kernel = self.add_weight(shape, "glorot_uniform",
                                                         name="initial_hidden_kernel")
            self.initial_hidden_bias = self.add_weight((u,), "zeros", name="initial_hidden_bias")
            self.initial_memory_kernel = self.add_weight(shape, "glorot_uniform",
                                                         name="initial_memory_kernel")
            self.initial_memory_bias = self.add_weight((u,), "zeros", name="initial_memory_bias")
            if self.motion:
                shape = self._initial_motion_kernel_shape(self._motion_size(m_shape))
                self.initial_motion_hidden_kernel = self.add_weight(
                    shape, "glorot_uniform", name="initial_motion_hidden_kernel")
                self.initial_motion_hidden_bias = self.add_weight(
                    (u,), "zeros", name="initial_motion_hidden_bias")
                self.initial_motion_memory_kernel = self.add_weight(
                    shape, "glorot_uniform", name="initial_motion_memory_kernel")
                self.initial_motion_memory_bias = self.add_weight(
                    (u,), "zeros", name="initial_motion_memory_bias")

    def _check_motion_shape(self, m_shape):
        if len(m_shape) != 4:
            raise ValueError(f"{type(self).__name__} needs a flow map (B, N1, N2, Dm) per frame, "
                             f"got shape {m_shape}")
        if tuple(m_shape[1:3]) != self.spatial:
            raise ValueError(f"motion map grid {tuple(m_shape[1:3])} must equal the feature "
                             f"map grid {self.spatial}")

    def _gate_kernel(self, size_in, initializer, name):
        """Weights from ``size_in`` channels to the four stacked gates."""
        return self.add_weight(self._kernel_shape(size_in, 4 * self.units), initializer, name=name)

    def _attention_kernel(self, size_in, size_out, name, initializer="glorot_uniform"):
        return self.add_weight(self._attention_kernel_shape(size_in, size_out), initializer,
                               name=name)

    def call(self, inputs, states, training=False):
        """One frame.

        inputs: X_t (B, N1, N2, D), or [X_t, M_t (B, N1, N2, Dm)] with motion.
        states: [H_{t-1}, C_{t-1}], then [H^m_{t-1}, C^m_{t-1}] with motion; each shaped like
        the hidden output.
        Returns ((H_t, A_t (B, N1, N2)), new states in the same layout).
        """
        x, m = inputs if self.motion else (inputs, None)
        h_prev, c_prev = states[0], states[1]
        bottom = []
        query = h_prev
        if self.motion:  # Eq. 10-15: the bottom layer, fed the top layer's H_{t-1}
            motion_gates = (self._transform(self._motion_input(m), self.motion_kernel)
                            + self._transform(states[2], self.motion_recurrent_kernel)
                            + self._transform(h_prev, self.motion_top_kernel) + self.motion_bias)
            bottom = list(lstm_update(motion_gates, states[3]))
            query = bottom[0]
        attention, lstm_input = self._attend(x, query)  # Eq. 7-9, or the ALSTM's expectation
        gates = (self._transform(lstm_input, self.kernel)
                 + self._transform(h_prev, self.recurrent_kernel) + self.bias)
        h, c = lstm_update(gates, c_prev)  # Eq. 1-6
        return (h, attention), [h, c, *bottom]

    def get_initial_state(self, batch_size, sequences=None):
        """The states a sequence starts from, in the layout ``call`` takes.

        With ``initial_state="zero"``: zeros for ``batch_size`` sequences (``sequences`` is
        ignored). With ``"mean"``: computed from ``sequences``, the cell's inputs with a time
        axis, X (B, T, ...) or [X, M], as tanh of a learned transform of their mean over the T
        frames given (see the module docstring); ``batch_size`` is then ignored.
        """
        if self.initial_state == "zero":
            shape = (batch_size, *self._hidden_shape())
            return [ops.zeros(shape, self.compute_dtype) for _ in range(4 if self.motion else 2)]
        if sequences is None:
            raise ValueError("initial_state='mean' computes the initial states from the input "
                             "sequence: pass its frames as get_initial_state(batch, sequences)")
        x, m = sequences if self.motion else (sequences, None)
        x_mean = self._initial_input(ops.mean(x, axis=1))
        states = [ops.tanh(self._transform(x_mean, self.initial_hidden_kernel)
                           + self.initial_hidden_bias),
                  ops.tanh(self._transform(x_mean, self.initial_memory_kernel)
                           + self.initial_memory_bias)]
        if self.motion:
            m_mean = self._motion_input(ops.mean(m, axis=1))
            states += [ops.tanh(self._transform(m_mean, self.initial_motion_hidden_kernel)
                                + self.initial_motion_hidden_bias),
                       ops.tanh(self._transform(m_mean, self.initial_motion_memory_kernel)
                                + self.initial_motion_memory_bias)]
        return states

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0] if self.motion else input_shape
        return (x_shape[0], *self._hidden_shape()), tuple(x_shape[:3])

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "attention_units": self.attention_units, "motion": self.motion,
                "initial_state": self.initial_state}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class AttentionLSTMCell(_AttentionCell):
    """Soft-attention LSTM step on a pool5 map (ALSTM), optionally with motion attention.

    Scores e^i = w^T tanh(W_x x^i + W_h q + b) for the N*N region vectors x^i of X_t, softmax
    over the regions, LSTM input sum_i a^i x^i (a D-vector). The query q is the top layer's
    h_{t-1}; with ``motion`` it is h^m_t of a bottom LSTM whose gates also take h_{t-1}
    (Eq. 10-15 in vector form) and whose input is M_t: a flow map (B, N1, N2, Dm), flattened,
    or a flow vector (B, Dm) such as fc7 (the authors' choice). States are (B, units).

    Args:
        units: hidden size of the LSTM (and of the bottom LSTM with ``motion``).
        attention_units: width of the attention MLP's hidden layer.
        motion: condition the attention on a flow-driven bottom LSTM (Sec. 3.2).
        initial_state: "zero" or "mean" (module docstring).
    """

    def _kernel_shape(self, size_in, size_out):
        return (size_in, size_out)

    _attention_kernel_shape = _kernel_shape

    def _initial_kernel_shape(self, size_in):
        return (size_in, self.units)

    _initial_motion_kernel_shape = _initial_kernel_shape

    def _initial_input(self, x_mean):
        """The mean region vector: (B, N1, N2, D) -> (B, D)."""
        return ops.mean(x_mean, axis=(1, 2))

    def _check_motion_shape(self, m_shape):
        if len(m_shape) != 2:
            super()._check_motion_shape(m_shape)

    def _motion_size(self, m_shape):
        return math.prod(m_shape[1:])

    def _motion_input(self, m):
        return ops.reshape(m, (-1, self.motion_kernel.shape[0]))

    def _hidden_shape(self):
        return (self.units,)

    def _transform(self, x, kernel):
        return ops.matmul(x, kernel)

    def _attend(self, x, query):
        n1, n2 = self.spatial
        regions = ops.reshape(x, (-1, n1 * n2, x.shape[-1]))
        query_term = ops.matmul(query, self.attention_state_kernel) + self.attention_bias
        hidden = ops.tanh(ops.matmul(regions, self.attention_input_kernel)
                          + ops.expand_dims(query_term, 1))
        scores = ops.reshape(ops.matmul(hidden, self.attention_score_kernel), (-1, n1, n2))
        attention = spatial_softmax(scores)
        weights = ops.expand_dims(ops.reshape(attention, (-1, n1 * n2)), -1)
        return attention, ops.sum(weights * regions, axis=1)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ConvAttentionLSTMCell(_AttentionCell):
    """Convolutional ALSTM step (Eq. 1-9), the VideoLSTM step (Eq. 10-15 + 7-9) with ``motion``.

    Z_t = W_z * tanh(W_xa * X_t + W_ha * Q + b_a) (Eq. 7), A_t = spatial softmax of Z_t (Eq. 8),
    X~_t = A_t . X_t (Eq. 9), then the convolutional LSTM of Eq. 1-6 on X~_t and H_{t-1}. The
    query Q is H_{t-1}; with ``motion`` it is H^m_t of a bottom ConvLSTM on the flow map M_t
    whose gates also convolve the top layer's H_{t-1} (Eq. 10-15). All convolutions use 'same'
    padding, so the N x N grid is kept. States are (B, N1, N2, units).

    Args:
        units: channels of H and C (and of H^m, C^m with ``motion``).
        attention_units: channels of the attention's hidden map (paper 512).
        kernel_size: side of the input-to-state and state-to-state kernels (paper 3).
        attention_kernel_size: side of W_xa, W_ha and W_z (paper 1).
        motion: condition the attention on a flow-driven bottom ConvLSTM (Sec. 3.2).
        initial_state: "zero" or "mean" (module docstring: a kernel_size convolution of the
            mean X for H_0, C_0, a 1 x 1 one of the mean M for H^m_0, C^m_0).
    """

    def __init__(self, units: int, attention_units: int, kernel_size: int,
                 attention_kernel_size: int, motion: bool = False, initial_state: str = "zero",
                 **kwargs):
        super().__init__(units, attention_units, motion, initial_state, **kwargs)
        self.kernel_size = odd_kernel(kernel_size, "kernel_size")
        self.attention_kernel_size = odd_kernel(attention_kernel_size, "attention_kernel_size")

    def _kernel_shape(self, size_in, size_out):
        return (self.kernel_size, self.kernel_size, size_in, size_out)

    def _attention_kernel_shape(self, size_in, size_out):
        return (self.attention_kernel_size, self.attention_kernel_size, size_in, size_out)

    def _initial_kernel_shape(self, size_in):
        return self._kernel_shape(size_in, self.units)

    def _initial_motion_kernel_shape(self, size_in):
        return (1, 1, size_in, self.units)

    def _initial_input(self, x_mean):
        return x_mean

    def _motion_size(self, m_shape):
        return m_shape[3]

    def _motion_input(self, m):
        return m

    def _hidden_shape(self):
        return (*self.spatial, self.units)

    def _transform(self, x, kernel):
        """Stride-1 'same' convolution of a (B, N1, N2, C) map with a (k, k, C, C') kernel."""
        return ops.conv(x, kernel, strides=1, padding="same")

    def _attend(self, x, query):
        hidden = ops.tanh(self._transform(x, self.attention_input_kernel)
                          + self._transform(query, self.attention_state_kernel)
                          + self.attention_bias)
        attention = spatial_softmax(self._transform(hidden, self.attention_score_kernel)[..., 0])
        return attention, ops.expand_dims(attention, -1) * x

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "attention_kernel_size": self.attention_kernel_size}


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class AttentionRNN(keras.layers.Layer):
    """Runs an attention cell over time: (B, T, ...) inputs -> per-frame hidden states and
    attention maps. T may differ from call to call.

    Call with X (B, T, N1, N2, D), or [X, M (B, T, N1, N2, Dm) or (B, T, Dm)] for a motion
    cell. Returns (hidden (B, T, *hidden_shape), attention (B, T, N1, N2)), starting from the
    cell's initial states: zeros, or with ``initial_state="mean"`` computed from the mean of
    these T frames.
    """

    def __init__(self, cell: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell

    def build(self, input_shape):
        if not self.cell.built:  # a cell deserialized from .keras arrives built
            self.cell.build(keras.tree.map_shape_structure(_drop_time, input_shape))

    def call(self, inputs, training=False):
        frames = keras.tree.map_structure(lambda seq: ops.moveaxis(seq, 1, 0), inputs)
        length, batch = ops.shape(keras.tree.flatten(frames)[0])[:2]
        states = self.cell.get_initial_state(batch, inputs)
        # TensorFlow's scan stacks per-step outputs shaped like the carry, so the carry holds
        # the last outputs too (the hidden state, shaped like H, and the attention map); and it
        # cannot take two sequences of unknown length, so it runs over frame indices.
        attention = ops.zeros((batch, *self.cell.spatial), self.compute_dtype)

        def step(carry, t):
            inputs_t = keras.tree.map_structure(lambda seq: seq[t], frames)
            output, new_states = self.cell(inputs_t, carry[0], training=training)
            return (new_states, output), (new_states, output)

        _, (_, (hidden, attention)) = ops.scan(
            step, (states, (ops.zeros_like(states[0]), attention)), ops.arange(length))
        return ops.moveaxis(hidden, 0, 1), ops.moveaxis(attention, 0, 1)

    def get_initial_state(self, batch_size, sequences=None):
        """The cell's initial states, for stepping frame by frame with ``self.cell``: zeros, or
        with ``initial_state="mean"`` from ``sequences`` (inputs with a time axis, as ``call``
        takes them)."""
        return self.cell.get_initial_state(batch_size, sequences)

    def compute_output_shape(self, input_shape):
        hidden, attention = self.cell.compute_output_shape(
            keras.tree.map_shape_structure(_drop_time, input_shape))
        time = (input_shape[0] if self.cell.motion else input_shape)[1]
        return (hidden[0], time, *hidden[1:]), (attention[0], time, *attention[1:])

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell)}

    @classmethod
    def from_config(cls, config):
        cell = keras.saving.deserialize_keras_object(config.pop("cell"))
        return cls(cell, **config)


def _drop_time(shape):
    """(B, T, ...) -> (B, ...)."""
    return (shape[0], *shape[2:])
