"""The classification models of paper Sec. 3 / Table 1-2, built by name on cached features, and
a frame-by-frame runner for streaming video.

Every model takes {"features": (B, T, *feature_shape)} (plus {"motion": (B, T, N, N, Dm)} with
motion attention, or (B, T, Dm) for the ALSTM with ``alstm_motion_input="fc7"``), T free, and
returns {"scores": (B, T, n_classes)} per-frame softmax scores, plus {"attention": (B, T, N, N)}
(the maps A_t, Eq. 8) for the attending architectures.
"""

from __future__ import annotations

from typing import Mapping

import keras
from keras import ops

from models.cells import AttentionLSTMCell, AttentionRNN, ConvAttentionLSTMCell
from models.heads import FrameClassifier
from models.sizes import ModelSizes

ARCHITECTURES = ("convnet", "lstm", "alstm", "convlstm", "convalstm", "videolstm")
ATTENDING = ("alstm", "convalstm", "videolstm")
ATTENTIONS = ("appearance", "motion")
VECTOR_ARCHITECTURES = ("convnet", "lstm")
RECURRENT_LAYER = "recurrent"
HEAD_LAYER = "head"
NORMALIZE_PREFIX = "normalize_"


def build_model(arch: str, n_classes: int, feature_shape: tuple[int, ...], sizes: ModelSizes,
                attention: str = "appearance", motion_shape: tuple[int, ...] | None = None,
                normalization: Mapping[str, tuple] | None = None) -> keras.Model:
    """The named architecture as a Keras model on per-frame features.

    arch: one of ARCHITECTURES. "convnet" (the frame classifier: a softmax on fc7) and "lstm"
    take fc7 vectors, feature_shape (D,); the others take pool5 maps, feature_shape (N, N, D).
    attention: "appearance" (attention from the top layer's H_{t-1}) or "motion" (from the
    bottom flow layer's H^m_t, Sec. 3.2), for "alstm" and "convalstm"; other architectures
    accept only the default. "videolstm" is "convalstm" with motion attention: it always
    attends with motion, whatever ``attention`` says. motion_shape: the flow input per frame,
    required with motion attention and refused otherwise: the flow map (N, N, Dm), or for
    "alstm" with ``sizes.alstm_motion_input == "fc7"`` the flow vector (Dm,).
    sizes: layer sizes and choices. ``sizes.initial_state`` applies to the attending
    architectures (LSTM and ConvLSTM start from zeros, as in the authors' code);
    ``sizes.dense_activation`` to every recurrent model's head.
    normalization: per-channel (mean, variance) of each input ("features", "motion"), applied
    as a fixed first layer. The paper is silent; cached features of the two streams differ in
    scale by an order of magnitude, and standardising them lets one learning rate serve both.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    motion = arch == "videolstm" or attention == "motion"
    if motion and arch not in ATTENDING:
        raise ValueError(f"attention='motion' needs an attending architecture "
                         f"({', '.join(ATTENDING)}), got {arch!r}")
    feature_shape = _checked_shape(feature_shape, "feature_shape",
                                   1 if arch in VECTOR_ARCHITECTURES else 3, arch)
    if motion:
        motion_rank = 1 if arch == "alstm" and sizes.alstm_motion_input == "fc7" else 3
        if motion_shape is None:
            raise ValueError(f"{arch} with motion attention needs motion_shape "
                             f"{'(Dm,)' if motion_rank == 1 else '(N, N, Dm)'}")
        motion_shape = _checked_shape(motion_shape, "motion_shape", motion_rank, arch)
    elif motion_shape is not None:
        raise ValueError(f"motion_shape is only used with motion attention; {arch} with "
                         f"attention={attention!r} would ignore {motion_shape}")

    inputs = {"features": keras.Input((None, *feature_shape), name="features")}
    if motion:
        inputs["motion"] = keras.Input((None, *motion_shape), name="motion")
    normalized = {name: _normalize(name, tensor, (normalization or {}).get(name))
                  for name, tensor in inputs.items()}
    features = normalized["features"]
    if arch == "convnet":
        scores = keras.layers.Dense(n_classes, activation="softmax", name=HEAD_LAYER)(features)
        return keras.Model(inputs, {"scores": scores}, name=arch)

    attention_maps = None
    if arch == "lstm":
        hidden = keras.layers.LSTM(sizes.hidden, return_sequences=True,
                                   name=RECURRENT_LAYER)(features)
    elif arch == "convlstm":
        hidden = keras.layers.ConvLSTM2D(sizes.hidden, sizes.kernel, padding="same",
                                         return_sequences=True, name=RECURRENT_LAYER)(features)
    else:
        if arch == "alstm":
            cell = AttentionLSTMCell(sizes.hidden, sizes.attention, motion=motion,
                                     initial_state=sizes.initial_state, name="cell")
        else:
            cell = ConvAttentionLSTMCell(sizes.hidden, sizes.attention, sizes.kernel,
                                         sizes.attention_kernel, motion=motion,
                                         initial_state=sizes.initial_state, name="cell")
        sequences = [features, normalized["motion"]] if motion else features
        hidden, attention_maps = AttentionRNN(cell, name=RECURRENT_LAYER)(sequences)
    state_rank = 1 if arch in ("lstm", "alstm") else 3
    scores = FrameClassifier(n_classes, sizes.dense, sizes.dropout, state_rank,
                             sizes.dense_activation, name=HEAD_LAYER)(hidden)
    outputs = {"scores": scores}
    if attention_maps is not None:
        outputs["attention"] = attention_maps
    name = f"{arch}_motion" if motion and arch != "videolstm" else arch
    return keras.Model(inputs, outputs, name=name)


def _normalize(name: str, tensor, statistics: tuple | None):
    """The input standardised per channel by fixed (mean, variance), or as it is."""
    if statistics is None:
        return tensor
    mean, variance = statistics
    return keras.layers.Normalization(axis=-1, mean=mean, variance=variance,
                                      name=f"{NORMALIZE_PREFIX}{name}")(tensor)


def _checked_shape(shape, setting: str, rank: int, arch: str) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) != rank or not all(isinstance(d, int) and d >= 1 for d in shape):
        depth = "Dm" if setting == "motion_shape" else "D"
        kind = f"({depth},)" if rank == 1 else f"(N, N, {depth})"
        raise ValueError(f"{setting} for {arch} must be {rank} positive integers {kind}, "
                         f"got {shape}")
    return shape


class FrameStepper:
    """Applies a model built by ``build_model`` (or loaded from .keras) one frame at a time, so
    a video can stream through it without being held whole.

    ``states = stepper.initial_states(batch)``, then for each frame
    ``scores_t, attention_t, states = stepper.step(inputs_t, states)`` with inputs_t
    {"features": (B, *feature_shape)} (plus "motion": (B, *motion_shape)); scores_t is
    (B, n_classes), attention_t (B, N, N) or None for non-attending models. Dropout is off.
    Returns backend tensors (``keras.ops.convert_to_numpy`` for arrays).

    With zero initial states (``initial_state="zero"``, and always for LSTM / ConvLSTM) the
    stream over T frames equals the model on the (B, T, ...) sequence, frame by frame.

    With ``initial_state="mean"`` the model starts a sequence from the mean of all its frames,
    which a stream cannot know when it starts. The stepper then starts from the frames
    available at the start: ``initial_states(batch, inputs)`` computes the states from
    ``inputs`` = {"features": (B, T0, ...), "motion": ...}, the first T0 >= 1 frames, exactly as
    the model would for a T0-frame sequence; ``initial_states(batch)`` without inputs leaves
    them pending, and the first ``step`` computes them from its own frame (T0 = 1) before
    stepping. So the stream equals the model on the same frames only when the model's mean is
    over the frames the stepper started from (e.g. the whole sequence passed to
    ``initial_states``); started from frame 0 alone its scores differ from the whole-sequence
    run (the initial states differ, the recurrence is the same).
    """

    def __init__(self, model: keras.Model):
        names = {layer.name for layer in model.layers}
        if HEAD_LAYER not in names:
            raise ValueError(f"model {model.name!r} has no layer {HEAD_LAYER!r}: "
                             "not built by models.registry.build_model")
        self.head = model.get_layer(HEAD_LAYER)
        self.recurrent = model.get_layer(RECURRENT_LAYER) if RECURRENT_LAYER in names else None
        cell = getattr(self.recurrent, "cell", None)
        self.motion = getattr(cell, "motion", False)
        #: "zero" or "mean": how the model's recurrent states start (zero for LSTM / ConvLSTM).
        self.initial_state = getattr(cell, "initial_state", "zero")
        #: the per-frame shape of the "motion" input ((N, N, Dm) or (Dm,)), None without motion.
        self.motion_shape = tuple(model.input["motion"].shape[2:]) if self.motion else None
        self.normalize = {layer.name[len(NORMALIZE_PREFIX):]: layer for layer in model.layers
                          if layer.name.startswith(NORMALIZE_PREFIX)}

    def initial_states(self, batch: int, inputs: dict | None = None) -> list:
        """Recurrent states for ``batch`` videos before their first frame (an empty list for
        the frame classifier).

        Zero states unless the model's states are mean-initialised; then computed from
        ``inputs`` ({"features": (B, T0, ...)} plus "motion", the frames available at the
        start), or, without ``inputs``, pending: the first ``step`` computes them from its frame.
        """
        if self.recurrent is None:
            return []
        if self.initial_state == "zero":
            return list(self.recurrent.get_initial_state(batch))
        if inputs is None:
            return [None] * (4 if self.motion else 2)
        sequences = self._normalized(self._needed(inputs))
        cell_inputs = ([sequences["features"], sequences["motion"]] if self.motion
                       else sequences["features"])
        return list(self.recurrent.get_initial_state(batch, cell_inputs))

    def _needed(self, inputs: dict) -> dict:
        needed = ("features", "motion") if self.motion else ("features",)
        missing = [key for key in needed if key not in inputs]
        if missing:
            raise ValueError(f"inputs lack {missing}; this model needs {list(needed)}")
        return {key: ops.convert_to_tensor(inputs[key], "float32") for key in needed}

    def _normalized(self, sequences: dict) -> dict:
        """Inputs with a time axis, standardised as the model's first layers do."""
        return {name: self.normalize[name](value) if name in self.normalize else value
                for name, value in sequences.items()}

    def step(self, inputs_t: dict, states: list) -> tuple:
        """One frame for every video of the batch: (scores_t, attention_t or None, new states).
        Pending (mean) initial states are computed from this frame first."""
        inputs_t = {name: value[:, 0] for name, value in self._normalized(
            {name: ops.expand_dims(value, 1) for name, value in self._needed(inputs_t).items()}
        ).items()}
        features = inputs_t["features"]
        if self.recurrent is None:
            return self.head(features), None, []
        cell_inputs = [features, inputs_t["motion"]] if self.motion else features
        if states and any(state is None for state in states):
            states = self.recurrent.get_initial_state(
                ops.shape(features)[0], keras.tree.map_structure(
                    lambda value: ops.expand_dims(value, 1), cell_inputs))
        output, new_states = self.recurrent.cell(cell_inputs, states, training=False)
        hidden, attention = output if isinstance(output, tuple) else (output, None)
        return self.head(hidden, training=False), attention, list(new_states)
