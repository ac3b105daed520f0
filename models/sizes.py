"""Model sizes and their checks, free of Keras so the config can validate them before any work
starts (and before a Luigi worker process forks)."""

from __future__ import annotations

from dataclasses import dataclass


def positive_int(value, name: str) -> int:
    """``value`` if it is a positive integer, else a ValueError naming the setting."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def odd_kernel(value, name: str) -> int:
    """``value`` if it is a positive odd kernel side, else a ValueError naming the setting."""
    if positive_int(value, name) % 2 == 0:
        raise ValueError(f"{name} must be odd so that 'same' padding is centred, got {value}")
    return value


@dataclass(frozen=True)
class ModelSizes:
    """Layer sizes; the defaults are the paper's (Sec. 5.2).

    hidden: LSTM hidden units / ConvLSTM channels, also the attention's hidden width (512).
    kernel: side of the input-to-state and state-to-state convolutions (3).
    attention_kernel: side of the attention convolutions of Eq. 7 (1).
    dense: units of the fully connected layer before the softmax (1024).
    dropout: dropout rate on that layer's output (0.7).
    """

    hidden: int = 512
    kernel: int = 3
    attention_kernel: int = 1
    dense: int = 1024
    dropout: float = 0.7

    def __post_init__(self):
        for name in ("hidden", "dense"):
            positive_int(getattr(self, name), f"ModelSizes.{name}")
        for name in ("kernel", "attention_kernel"):
            odd_kernel(getattr(self, name), f"ModelSizes.{name}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            raise ValueError(f"ModelSizes.dropout must be in [0, 1), got {self.dropout!r}")
