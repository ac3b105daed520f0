"""Dual TV-L1 optical flow written with TensorFlow ops, batched over frame pairs.

The algorithm is OpenCV's cv2.optflow.DualTVL1OpticalFlow (Zach, Pock and Bischof 2007, in the
formulation of Sanchez, Meinhardt-Llopis and Facciolo 2013) step for step: an image pyramid
made with bilinear resizing by scale_step, `warps` bicubic warps of the second image per scale,
the primal-dual iterations (thresholding, primal update, dual update) with the epsilon stopping
rule, and a median filter on the flow before each outer iteration. Every pair of a batch keeps
its own stopping rule, so a pair's flow does not depend on the pairs solved beside it. The
borders follow OpenCV's: replicated for gradients, resizing and the median, zero outside the
image when warping.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter (interpolateCubic)
SMALLEST_LEVEL = 16  # OpenCV stops the pyramid before a level narrower or shorter than this
FLT_EPSILON = float(np.finfo(np.float32).eps)
MAX_BATCH_PAIRS = 32  # default largest batch; smaller batches are padded to a power of two


@dataclasses.dataclass(frozen=True)
class _Axis:
    """Bilinear resampling along one axis, as cv2.resize INTER_LINEAR: out[d] =
    src[lo[d]] * (1 - w[d]) + src[hi[d]] * w[d], borders replicated."""

    lo: np.ndarray
    hi: np.ndarray
    w: np.ndarray


def _linear_axis(n_src: int, n_dst: int, scale: float) -> _Axis:
    """OpenCV's coordinate map for INTER_LINEAR: source x = (d + 0.5) * scale - 0.5, computed in
    float32 and clamped to the image."""
    f = ((np.arange(n_dst) + 0.5) * scale - 0.5).astype(np.float32)
    lo = np.floor(f).astype(np.int32)
    w = (f - lo).astype(np.float32)
    w[lo < 0] = 0.0
    lo[lo < 0] = 0
    w[lo >= n_src - 1] = 0.0
    lo[lo >= n_src - 1] = n_src - 1
    return _Axis(lo, np.minimum(lo + 1, n_src - 1).astype(np.int32), w)


def pyramid_sizes(height: int, width: int, nscales: int, scale_step: float
                  ) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, finest first: each level is the previous one
    times scale_step rounded half to even (cv2.resize with fx = fy = scale_step), and the
    pyramid ends before a level under 16 pixels on a side, as OpenCV's does."""
    sizes = [(height, width)]
    for _ in range(1, nscales):
        h, w = (round(n * scale_step) for n in sizes[-1])
        if h < SMALLEST_LEVEL or w < SMALLEST_LEVEL:
            break
        sizes.append((h, w))
    return sizes


def _resize(x: tf.Tensor, rows: _Axis, cols: _Axis) -> tf.Tensor:
    """(B, H, W) -> (B, H', W') bilinear resize along columns, then rows."""
    x = (tf.gather(x, cols.lo, axis=2) * (1.0 - cols.w)
         + tf.gather(x, cols.hi, axis=2) * cols.w)
    wr = rows.w[:, None]
    return tf.gather(x, rows.lo, axis=1) * (1.0 - wr) + tf.gather(x, rows.hi, axis=1) * wr


def _replicate_pad(x: tf.Tensor, r: int) -> tf.Tensor:
    """(B, H, W) -> (B, H + 2r, W + 2r), edge values repeated."""
    h, w = x.shape[1], x.shape[2]
    x = tf.gather(x, np.clip(np.arange(-r, h + r), 0, h - 1), axis=1)
    return tf.gather(x, np.clip(np.arange(-r, w + r), 0, w - 1), axis=2)


def centered_gradient(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(B, H, W) -> d/dx, d/dy by central differences halved; one-sided (halved) at the borders."""
    p = _replicate_pad(x, 1)
    return 0.5 * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]), 0.5 * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])


def forward_gradient(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(B, H, W) -> forward differences along x and y, zero on the last column / row."""
    dx = tf.pad(x[:, :, 1:] - x[:, :, :-1], [[0, 0], [0, 0], [0, 1]])
    dy = tf.pad(x[:, 1:, :] - x[:, :-1, :], [[0, 0], [0, 1], [0, 0]])
    return dx, dy


def divergence(v1: tf.Tensor, v2: tf.Tensor) -> tf.Tensor:
    """Backward-difference divergence of the field (v1, v2), zero outside the first row/column
    (the adjoint of `forward_gradient`)."""
    v1_left = tf.pad(v1[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
    v2_up = tf.pad(v2[:, :-1, :], [[0, 0], [1, 0], [0, 0]])
    return (v1 - v1_left) + (v2 - v2_up)


def batcher_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort of n values as compare-exchange pairs (i, j), i < j: after
    each, wire i holds the smaller value. Wires from n up to the next power of two would hold
    +inf and never move, so their exchanges are left out."""
    size = 1 << (n - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.lru_cache(maxsize=None)
def median_network(n: int) -> tuple[tuple[int, int], ...]:
    """The exchanges of `batcher_network(n)` that the middle wire depends on: a selection
    network for the median of n (odd) values, of elementwise minima and maxima only, which XLA
    fuses into one pass on any device."""
    needed, kept = {n // 2}, []
    for i, j in reversed(batcher_network(n)):
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {i, j}
    return tuple(reversed(kept))


def median_filter(x: tf.Tensor, size: int) -> tf.Tensor:
    """(B, H, W) -> median of each size x size window, borders replicated (cv2.medianBlur)."""
    r = size // 2
    h, w = x.shape[1], x.shape[2]
    p = _replicate_pad(x, r)
    wires = [p[:, j:j + h, i:i + w] for j in range(size) for i in range(size)]
    for i, j in median_network(size * size):
        wires[i], wires[j] = tf.minimum(wires[i], wires[j]), tf.maximum(wires[i], wires[j])
    return wires[size * size // 2]


def _cubic_weights(t: tf.Tensor) -> list[tf.Tensor]:
    """OpenCV's bicubic weights (A = -0.75) of the taps at -1, 0, 1, 2 for a fraction t."""
    a = CUBIC_A
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]


def warp_bicubic(images: tf.Tensor, u1: tf.Tensor, u2: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) images sampled at (x + u1, y + u2) by bicubic interpolation, zero outside the
    image (cv2.remap INTER_CUBIC, BORDER_CONSTANT): -> (B, H, W, C)."""
    b, h, w, c = images.shape
    padded = tf.reshape(tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]]),
                        [-1, (h + 4) * (w + 4), c])
    xs = tf.clip_by_value(np.arange(w, dtype=np.float32)[None, None, :] + u1, -3.0, w + 3.0)
    ys = tf.clip_by_value(np.arange(h, dtype=np.float32)[None, :, None] + u2, -3.0, h + 3.0)
    x0, y0 = tf.floor(xs), tf.floor(ys)
    wx, wy = _cubic_weights(xs - x0), _cubic_weights(ys - y0)
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    out = tf.zeros_like(images)
    for j in range(4):
        row = tf.clip_by_value(y0 + (j + 1), 0, h + 3) * (w + 4)
        for i in range(4):
            index = row + tf.clip_by_value(x0 + (i + 1), 0, w + 3)
            taps = tf.gather(padded, tf.reshape(index, [-1, h * w]), batch_dims=1)
            out += tf.reshape(taps, [-1, h, w, c]) * (wy[j] * wx[i])[..., None]
    return out


def _where(mask: tf.Tensor, new: tf.Tensor, old: tf.Tensor) -> tf.Tensor:
    return tf.where(mask[:, None, None], new, old)


class TVL1Solver:
    """Batched Dual TV-L1 for frame pairs of one size: (B, H, W) uint8 pairs -> (B, H, W, 2)
    float32 flow (x, y), the settings of a pipeline.flow.tvl1.TVL1Params (`backend` and `bound` are
    not the solver's). Compiled with XLA once per batch size."""

    def __init__(self, params, height: int, width: int):
        self.params = params
        self.sizes = pyramid_sizes(height, width, params.nscales, params.scale_step)
        down, up = [], []
        for (h0, w0), (h1, w1) in zip(self.sizes, self.sizes[1:]):
            step = 1.0 / params.scale_step
            down.append((_linear_axis(h0, h1, step), _linear_axis(w0, w1, step)))
            up.append((_linear_axis(h1, h0, h1 / h0), _linear_axis(w1, w0, w1 / w0)))
        self._down, self._up = down, up
        self._solve = tf.function(self._graph, jit_compile=True)

    def __call__(self, prev: np.ndarray, next_: np.ndarray,
                 initial_flow: np.ndarray | None = None) -> np.ndarray:
        """prev, next_: (B, H, W) uint8; initial_flow: (B, H, W, 2) float32, used when
        params.use_initial_flow, else zero flow."""
        shape = (prev.shape[0], *self.sizes[0])
        for name, images in (("prev", prev), ("next", next_)):
            if images.dtype != np.uint8 or images.shape != shape:
                raise ValueError(f"TVL1Solver: {name} must be uint8 {shape}, "
                                 f"got {images.dtype} {images.shape}")
        if initial_flow is None or not self.params.use_initial_flow:
            initial_flow = np.zeros((*shape, 2), np.float32)
        flow = self._solve(tf.constant(prev), tf.constant(next_),
                           tf.constant(initial_flow, tf.float32))
        return flow.numpy()

    def _graph(self, prev, next_, initial_flow):
        p = self.params
        i0s = [tf.cast(prev, tf.float32)]
        i1s = [tf.cast(next_, tf.float32)]
        u1, u2 = initial_flow[..., 0], initial_flow[..., 1]
        for rows, cols in self._down:
            i0s.append(_resize(i0s[-1], rows, cols))
            i1s.append(_resize(i1s[-1], rows, cols))
            if p.use_initial_flow:
                u1 = _resize(u1, rows, cols) * p.scale_step
                u2 = _resize(u2, rows, cols) * p.scale_step
        if not p.use_initial_flow:
            u1 = tf.zeros_like(i0s[-1])
            u2 = tf.zeros_like(i0s[-1])
        u3 = tf.zeros_like(i0s[-1])
        for s in reversed(range(len(self.sizes))):
            u1, u2, u3 = self._one_scale(i0s[s], i1s[s], u1, u2, u3)
            if s:
                rows, cols = self._up[s - 1]
                u1 = _resize(u1, rows, cols) / p.scale_step
                u2 = _resize(u2, rows, cols) / p.scale_step
                u3 = _resize(u3, rows, cols)
        return tf.stack([u1, u2], -1)

    def _one_scale(self, i0, i1, u1, u2, u3):
        """Flow at one pyramid level: `warps` warps of i1 towards i0, each followed by the
        primal-dual iterations until the epsilon rule or the iteration limits stop them."""
        p = self.params
        use_gamma = p.gamma != 0
        h, w = i0.shape[1], i0.shape[2]
        scaled_epsilon = np.float32(p.epsilon * p.epsilon * h * w)
        l_t = np.float32(p.lambda_ * p.theta)
        taut = np.float32(p.tau / p.theta)
        theta, gamma = np.float32(p.theta), np.float32(p.gamma)
        i1x, i1y = centered_gradient(i1)
        i1_stack = tf.stack([i1, i1x, i1y], -1)
        zeros = tf.zeros_like(i0)
        duals = (zeros,) * (6 if use_gamma else 4)

        def iteration(u, duals, active, consts):
            """One inner iteration for the pairs still active: thresholding (v), primal update (u),
            dual update (p). Returns the new u, duals and whether each pair goes on."""
            i1wx, i1wy, grad, rho_c = consts
            u1, u2, u3 = u
            rho = rho_c + (i1wx * u1 + i1wy * u2)
            if use_gamma:
                rho += gamma * u3
            below, above = rho < -l_t * grad, rho > l_t * grad
            textured = grad > FLT_EPSILON
            fi = tf.where(textured, -rho / tf.where(textured, grad, 1.0), 0.0)
            step = tf.where(below, l_t, tf.where(above, -l_t, fi))
            new = [u1 + step * i1wx + theta * divergence(duals[0], duals[1]),
                   u2 + step * i1wy + theta * divergence(duals[2], duals[3])]
            if use_gamma:
                new.append(u3 + step * gamma + theta * divergence(duals[4], duals[5]))
            error = tf.add_n([tf.reduce_sum(tf.square(n - o), axis=[1, 2])
                              for n, o in zip(new, u)])
            new_duals = []
            for k, component in enumerate(new):
                gx, gy = forward_gradient(component)
                norm = 1.0 + taut * tf.sqrt(gx * gx + gy * gy)
                new_duals += [(duals[2 * k] + taut * gx) / norm,
                              (duals[2 * k + 1] + taut * gy) / norm]
            if not use_gamma:
                new.append(u3)
            u = tuple(_where(active, n, o) for n, o in zip(new, u))
            duals = tuple(_where(active, n, o) for n, o in zip(new_duals, duals))
            return u, duals, tf.logical_and(active, error > scaled_epsilon)

        def warp(n, u, duals):
            """Warp i1 by the flow u, then iterate until this warp's stopping rule."""
            warped = warp_bicubic(i1_stack, u[0], u[1])
            i1w, i1wx, i1wy = warped[..., 0], warped[..., 1], warped[..., 2]
            grad = i1wx * i1wx + i1wy * i1wy
            rho_c = i1w - i1wx * u[0] - i1wy * u[1] - i0
            consts = (i1wx, i1wy, grad, rho_c)

            def inner(u, duals, active):
                def body(n, u, duals, active):
                    return (n + 1, *iteration(u, duals, active, consts))
                _, u, duals, active = tf.while_loop(
                    lambda n, u, duals, active: tf.logical_and(
                        n < p.inner_iterations, tf.reduce_any(active)),
                    body, (tf.constant(0), u, duals, active))
                return u, duals, active

            def outer(n, u, duals, active):
                if p.median_filtering > 1:
                    u = (_where(active, median_filter(u[0], p.median_filtering), u[0]),
                         _where(active, median_filter(u[1], p.median_filtering), u[1]), u[2])
                return (n + 1, *inner(u, duals, active))

            active = tf.ones([tf.shape(i0)[0]], tf.bool)
            _, u, duals, _ = tf.while_loop(
                lambda n, u, duals, active: tf.logical_and(
                    n < p.outer_iterations, tf.reduce_any(active)),
                outer, (tf.constant(0), u, duals, active))
            return n + 1, u, duals

        _, (u1, u2, u3), _ = tf.while_loop(lambda n, u, duals: n < p.warps, warp,
                                           (tf.constant(0), (u1, u2, u3), duals))
        return u1, u2, u3


@functools.lru_cache(maxsize=8)
def solver(params, height: int, width: int) -> TVL1Solver:
    """One compiled solver per settings and frame size, shared by every caller."""
    return TVL1Solver(params, height, width)


def _padded_size(n: int, batch_pairs: int) -> int:
    """Batch size a run of n pairs is padded to: the next power of two, at most batch_pairs,
    so that few batch shapes are ever compiled."""
    return min(batch_pairs, 1 << (n - 1).bit_length())


def solve_pairs(prev: np.ndarray, next_: np.ndarray, params,
                initial_flow: np.ndarray | None = None,
                batch_pairs: int = MAX_BATCH_PAIRS) -> np.ndarray:
    """Float flow of N independent pairs: (N, H, W) uint8 twice -> (N, H, W, 2) float32, solved
    in batches of at most batch_pairs; a short batch is padded with copies of its last pair,
    which changes nothing for the others since every pair keeps its own stopping rule."""
    n, h, w = prev.shape
    size = _padded_size(n, batch_pairs)
    if initial_flow is None:
        initial_flow = np.zeros((n, h, w, 2), np.float32)
    out = np.empty((n, h, w, 2), np.float32)
    for start in range(0, n, size):
        index = np.minimum(np.arange(start, start + size), n - 1)
        flow = solver(params, h, w)(prev[index], next_[index], initial_flow[index])
        out[start:start + size] = flow[:min(size, n - start)]
    return out


def video_pairs(gray: np.ndarray, params, batch_pairs: int = MAX_BATCH_PAIRS) -> np.ndarray:
    """Float flow between adjacent frames: (T, H, W) uint8 -> (T-1, H, W, 2) float32. With
    params.use_initial_flow, pair t starts from pair t-1's flow, so the pairs run one by one."""
    if not params.use_initial_flow:
        return solve_pairs(gray[:-1], gray[1:], params, batch_pairs=batch_pairs)
    flows, flow = [], None
    for t in range(gray.shape[0] - 1):
        flow = solve_pairs(gray[t:t + 1], gray[t + 1:t + 2], params,
                           None if flow is None else flow[None], 1)[0]
        flows.append(flow)
    return np.stack(flows)
