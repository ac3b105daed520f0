"""Keras models: VGG-16 backbones and the recurrent architectures, built by name."""
