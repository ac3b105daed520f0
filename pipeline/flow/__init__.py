"""Optical flow: TV-L1 between adjacent frames with OpenCV or batched in TensorFlow, and the
flow shards of ComputeFlow."""
