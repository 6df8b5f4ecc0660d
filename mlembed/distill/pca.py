"""Dimension reduction for distillation: PCA of teacher embeddings as a sentence-transformers Dense layer."""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The ``(in_dim, dim)`` matrix of the top ``dim`` principal directions of ``vectors``.

    The directions are fitted on the *centred* vectors (as scikit-learn's ``PCA`` does: the eigenvectors of
    their covariance, computed here with numpy), but the layer applies them without centring (it has no
    bias), as in sentence-transformers' dimensionality-reduction example; the output is re-normalised.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(500, 8)) * np.array([5, 4, 3, 1, 1, 1, 1, 1])
        >>> c = fit_pca(x, 3); c.shape
        (8, 3)
        >>> np.round(np.abs(c[:3]), 1).tolist()  # the three directions of largest variance
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if dim >= vectors.shape[1]:
        raise ValueError(f"--dim {dim} must be smaller than the teacher's dimension {vectors.shape[1]}")
    if len(vectors) < dim:
        raise ValueError(f"PCA to {dim} dimensions needs at least {dim} training sentences, got {len(vectors)}")
    centred = vectors - vectors.mean(axis=0)
    values, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    top = vecs[:, np.argsort(values)[::-1][:dim]]
    top *= np.sign(top[np.abs(top).argmax(axis=0), np.arange(dim)])  # deterministic signs (largest entry > 0)
    return top.astype(np.float32)


def dense_layer(components: np.ndarray) -> Any:
    """A bias-free, identity-activation ``Dense`` module applying ``x @ components``.

    Example:
        >>> layer = dense_layer(np.eye(4, 2, dtype=np.float32))
        >>> layer.get_config_dict()["out_features"]
        2
    """
    import torch
    from sentence_transformers.models import Dense

    in_dim, out_dim = components.shape
    layer = Dense(in_features=in_dim, out_features=out_dim, bias=False, activation_function=torch.nn.Identity())
    with torch.no_grad():
        layer.linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(components.T)))
    return layer


def add_projection(model: Any, components: np.ndarray) -> None:
    """Append the PCA Dense layer to a model (after its pooling/normalisation), then re-normalise."""
    from sentence_transformers.models import Normalize

    model.append(dense_layer(components))
    model.append(Normalize())
