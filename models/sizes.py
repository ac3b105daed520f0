"""Model sizes and their checks, free of Keras so the config can validate them before any work
starts (and before a Luigi worker process forks)."""

from __future__ import annotations

from dataclasses import dataclass


def positive_int(value, name: str) -> int:
    """``value`` if it is a positive integer, else a ValueError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def choice(value, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming the setting."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def odd_kernel(value, name: str) -> int:
    """``value`` if it is a positive odd kernel side, else a ValueError naming the setting."""
    if positive_int(value, name) % 2 == 0:
        raise ValueError(f"{name} must be odd so that 'same' padding is centred, got {value}")
    return value


INITIAL_STATES = ("zero", "mean")
DENSE_ACTIVATIONS = ("relu", "tanh")
ALSTM_MOTION_INPUTS = ("pool5", "fc7")


@dataclass(frozen=True)
class ModelSizes:
    """Layer sizes and the model choices the paper leaves open; the sizes' defaults are the
    paper's (Sec. 5.2), the choices' defaults are this project's (the authors' public code
    chose mean / tanh / fc7, configs/paper.cfg follows them).

    hidden: LSTM hidden units / ConvLSTM channels (512).
    attention: channels of the attention's hidden map, the output of W_xa and W_ha in Eq. 7
        (512: "all these convolutional kernels have 512 channels"). Under RMSprop every weight
        moves about one learning rate per update, so the score map's range, and how fast the
        attention can sharpen, grows with this width (README, "Replication").
    kernel: side of the input-to-state and state-to-state convolutions (3).
    attention_kernel: side of the attention convolutions of Eq. 7 (1).
    dense: units of the fully connected layer before the softmax (1024).
    dropout: dropout rate on that layer's output (0.7).
    initial_state: the attending models' (ALSTM, ConvALSTM, VideoLSTM) initial H_0, C_0 (and
        H^m_0, C^m_0): "zero", or "mean", tanh of a learned transform of the input's mean over
        the sequence (Xu et al.; the authors' code). LSTM and ConvLSTM always start from zero.
    dense_activation: activation of the ``dense`` layer, "relu" or "tanh" (the authors').
    alstm_motion_input: what the ALSTM's bottom (motion) LSTM reads per frame: the flow
        stream's "pool5" map flattened, or its "fc7" vector (the authors'). ConvALSTM and
        VideoLSTM always read the pool5 map.
    """

    hidden: int = 512
    attention: int = 512
    kernel: int = 3
    attention_kernel: int = 1
    dense: int = 1024
    dropout: float = 0.7
    initial_state: str = "zero"
    dense_activation: str = "relu"
    alstm_motion_input: str = "pool5"

    def __post_init__(self):
        for name in ("hidden", "attention", "dense"):
            positive_int(getattr(self, name), f"ModelSizes.{name}")
        for name in ("kernel", "attention_kernel"):
            odd_kernel(getattr(self, name), f"ModelSizes.{name}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise ValueError(f"ModelSizes.dropout must be in [0, 1), got {self.dropout!r}")
        choice(self.initial_state, "ModelSizes.initial_state", INITIAL_STATES)
        choice(self.dense_activation, "ModelSizes.dense_activation", DENSE_ACTIVATIONS)
        choice(self.alstm_motion_input, "ModelSizes.alstm_motion_input", ALSTM_MOTION_INPUTS)
