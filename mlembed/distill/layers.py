"""A smaller student: keep ``n`` of a model's transformer layers, then distil it from the full model.

Mining and search spend their time encoding; a student with half the layers encodes about twice as fast.
As in DistilBERT and the sentence-transformers distillation example, the smaller model starts as a copy of
the full one with layers left out (spread over the depth, the top one always kept: its output is what the
head was fitted on) and learns the full model's vector of every sentence, on both sides of the pairs
(``mlembed distill --student FOLDER --layers 6``: the folder is its own teacher).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def spread(total: int, keep: int) -> list[int]:
    """Indices of ``keep`` of ``total`` layers, evenly spread, the first and the last among them.

    Example:
        >>> spread(12, 6), spread(12, 4), spread(6, 1)
        ([0, 2, 4, 7, 9, 11], [0, 4, 7, 11], [5])
    """
    if not 1 <= keep <= total:
        raise ValueError(f"--layers {keep}: expected 1 to {total} (the model has {total} layers)")
    if keep == 1:
        return [total - 1]
    return sorted({int(i) for i in np.round(np.linspace(0, total - 1, keep))})


def encoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of transformer layers of a sentence-transformers model (BERT/XLM-R style)."""
    auto = model[0].auto_model
    layers = getattr(getattr(auto, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(
            f"{type(auto).__name__}: no encoder.layer list to take layers from (expected a BERT-like model)"
        )
    return layers


def keep_layers(model: Any, n: int) -> list[int]:
    """Cut ``model`` (in place) down to ``n`` of its transformer layers (:func:`spread`); returns their indices
    in the full model. The config is updated, so the saved folder loads as an ``n``-layer model.

    Example:
        >>> from mlembed.models import load_model
        >>> m = load_model("minilm-en")
        >>> keep_layers(m, 3), m[0].auto_model.config.num_hidden_layers
        ([0, 2, 5], 3)
    """
    import torch

    layers = encoder_layers(model)
    kept = spread(len(layers), n)
    model[0].auto_model.encoder.layer = torch.nn.ModuleList([layers[i] for i in kept])
    config = model[0].auto_model.config
    config.num_hidden_layers = n
    if getattr(config, "layer_types", None):  # transformers 5 keeps per-layer attention types on some configs
        config.layer_types = [config.layer_types[i] for i in kept]
    for position, layer in enumerate(model[0].auto_model.encoder.layer):  # caches are indexed by position
        attention = getattr(getattr(layer, "attention", None), "self", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position
    return kept
