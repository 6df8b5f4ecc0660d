"""Dimension reduction for distillation: PCA of teacher embeddings as a sentence-transformers Dense layer."""

from __future__ import annotations

from typing import Any

import numpy as np


def fit_pca(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The ``(in_dim, dim)`` matrix of the top ``dim`` principal directions of ``vectors``.

    No centring is applied at inference (the layer has no bias), as in sentence-transformers'
    dimensionality-reduction example, so the components are fitted on the raw vectors' covariance.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(500, 8)) * np.array([5, 4, 3, 1, 1, 1, 1, 1])
        >>> fit_pca(x, 3).shape
        (8, 3)
    """
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    if dim >= vectors.shape[1]:
        raise ValueError(f"--dim {dim} must be smaller than the teacher's dimension {vectors.shape[1]}")
    if len(vectors) < dim:
        raise ValueError(f"PCA to {dim} dimensions needs at least {dim} training sentences, got {len(vectors)}")
    pca = PCA(n_components=dim, random_state=0).fit(vectors)
    return pca.components_.T.astype(np.float32)


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
