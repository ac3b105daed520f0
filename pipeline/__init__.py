"""VideoLSTM pipeline: everything that is not a neural network (datasets, flow, caches,
evaluation)."""

__version__ = "0.1.0"
