"""The per-frame classifier on top of every recurrent model (paper Sec. 5.2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from models.cells import SERIALIZATION_PACKAGE
from models.sizes import DENSE_ACTIVATIONS, choice


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class FrameClassifier(keras.layers.Layer):
    """Hidden state -> Dense(``dense_units``, ``activation``) -> Dropout -> Dense softmax, per
    frame.

    The paper fully connects the hidden representation to 1,024 units, applies dropout 0.7 and
    a softmax classifier (Sec. 5.2); it does not name the 1,024 units' activation: "relu" by
    default here, "tanh" in the authors' code. A frame's state is the last ``state_rank`` axes
    (1 for a vector, 3 for an N x N x F map, flattened first), so the layer takes
    (B, T, *state) sequences and (B, *state) single frames.
    """

    def __init__(self, n_classes: int, dense_units: int, dropout: float, state_rank: int,
                 activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self.dense_units = dense_units
        self.dropout = dropout
        self.state_rank = state_rank
        self.activation = choice(activation, "activation", DENSE_ACTIVATIONS)
        self.hidden = keras.layers.Dense(dense_units, activation=activation, name="dense")
        self.drop = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(n_classes, activation="softmax", name="softmax")

    def build(self, input_shape):
        self.flat_size = math.prod(input_shape[-self.state_rank:])
        self.hidden.build((None, self.flat_size))
        self.classifier.build((None, self.dense_units))

    def call(self, inputs, training=False):
        """inputs (..., *state) -> class probabilities (..., n_classes)."""
        leading = ops.shape(inputs)[:-self.state_rank]
        flat = ops.reshape(inputs, (*leading, self.flat_size))
        return self.classifier(self.drop(self.hidden(flat), training=training))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-self.state_rank], self.n_classes)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes,
                "dense_units": self.dense_units, "dropout": self.dropout,
                "state_rank": self.state_rank, "activation": self.activation}
