"""A non-learned motion-saliency map, the baseline beside Fig. 4: where the flow stream's pool5
responds most, put through the same box procedure as the learned attention (Sec. 4)."""

import numpy as np


def motion_attention(flow_maps):
    """Attention-like maps (T, N, N) from a video's flow pool5 maps (T, N, N, D).

    Each channel is standardised over all the video's frames and cells, so a response shared
    by the whole frame (the look of still flow, a camera pan) weighs little; a cell's energy
    is the L2 norm of its standardised channels, and each frame's map is its energy divided
    by the frame's total: non-negative and summing to 1, like the softmax of Eq. 8.
    """
    maps = np.asarray(flow_maps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[0] == 0:
        raise ValueError(f"flow maps must have shape (T, N, N, D) with T >= 1, got {maps.shape}")
    spread = maps.std(axis=(0, 1, 2))
    standard = (maps - maps.mean(axis=(0, 1, 2))) / np.where(spread > 0, spread, 1.0)
    energy = np.linalg.norm(standard, axis=-1)
    total = energy.sum(axis=(1, 2), keepdims=True)
    uniform = np.full_like(energy, 1.0 / energy[0].size)
    return np.where(total > 0, energy / np.where(total > 0, total, 1.0), uniform)
