"""Head weights drawn by the core, so every backend starts from the same numbers."""

from __future__ import annotations

import itertools

import numpy as np

from tlcore._specs import HeadSpec

__all__ = ["head_dense_shapes", "initial_head_weights"]

# Keras's truncated-normal variance scaling divides by this so the truncated
# distribution keeps the intended standard deviation.
_TRUNCATED_STD_CORRECTION = 0.87962566103423978


def head_dense_shapes(spec: HeadSpec, in_features: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each dense layer of the head, in order."""
    widths = [in_features, *spec.hidden, spec.num_outputs]
    return list(itertools.pairwise(widths))


def initial_head_weights(spec: HeadSpec, in_features: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel of shape (fan_in, fan_out), zero bias) for each dense layer, drawn from ``seed``."""
    rng = np.random.default_rng([seed, 0x4EAD])
    weights: list[tuple[np.ndarray, np.ndarray]] = []
    for fan_in, fan_out in head_dense_shapes(spec, in_features):
        if spec.initializer == "glorot_uniform":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        elif spec.initializer == "he_normal":
            std = np.sqrt(2.0 / fan_in) / _TRUNCATED_STD_CORRECTION
            kernel = rng.normal(0.0, std, size=(fan_in, fan_out))
            outside = np.abs(kernel) > 2 * std
            while outside.any():
                kernel[outside] = rng.normal(0.0, std, size=int(outside.sum()))
                outside = np.abs(kernel) > 2 * std
        else:
            kernel = np.zeros((fan_in, fan_out))
        weights.append((kernel.astype(np.float32), np.zeros(fan_out, dtype=np.float32)))
    return weights
