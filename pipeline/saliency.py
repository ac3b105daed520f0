"""A non-learned motion-saliency map, the baseline beside Fig. 4: where the flow stream's pool5
responds most, put through the same box procedure as the learned attention (Sec. 4)."""

import numpy as np


def motion_attention(flow_maps):
    """Attention-like maps (T, N, N) from a video's flow pool5 maps (T, N, N, D).

    A cell's energy is the L2 norm of its pool5 activations; each frame's lowest energy, the
    response that still flow gives everywhere, is subtracted, and each frame's map is divided
    by its total: non-negative and summing to 1, like the softmax of Eq. 8 (a frame whose
    cells are all equal is uniform). The definition was chosen on training videos.
    """
    maps = np.asarray(flow_maps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[0] == 0:
        raise ValueError(f"flow maps must have shape (T, N, N, D) with T >= 1, got {maps.shape}")
    energy = np.linalg.norm(maps, axis=-1)
    energy -= energy.min(axis=(1, 2), keepdims=True)
    total = energy.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(energy, 1.0 / energy[0].size)
    return np.where(total > 0, energy / np.where(total > 0, total, 1.0), uniform)
