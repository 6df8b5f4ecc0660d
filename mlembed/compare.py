"""Cosine-similarity tables: the same sentence in several languages, under one or more models.

Used by ``mlembed compare`` and by ``mlembed distill`` to show the teacher (before) and the student
(after) side by side.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

#: The same sentence in several languages and scripts (the default of ``mlembed compare``).
DEFAULT_SENTENCES: dict[str, str] = {
    "en": "The weather is lovely today.",
    "de": "Das Wetter ist heute herrlich.",
    "fr": "Il fait très beau aujourd'hui.",
    "es": "Hoy hace un tiempo estupendo.",
    "ru": "Сегодня прекрасная погода.",
    "zh-Hans": "今天天气很好。",
}
#: An unrelated English sentence, so a table shows what "not a translation" scores.
CONTROL_SENTENCE = ("en*", "Please restart the computer to finish the update.")


def cosine_to_first(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row to the first row.

    Example:
        >>> cosine_to_first(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])).round(3).tolist()
        [1.0, 0.707, 0.0]
    """
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return unit @ unit[0]


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(1, width - _display_width(text))


def similarity_table(models: dict[str, Any], sentences: dict[str, str] | None = None, control: bool = True) -> str:
    """A text table: one row per language, one column per model, cosine to the English sentence. A model
    is anything :func:`mlembed.encode` takes (a loaded model, a name, a folder) or a function returning one:
    names and functions are loaded one column at a time, so only one model is in memory at once.

    Example:
        >>> from mlembed.models import load_model
        >>> print(similarity_table({"teacher": load_model("minilm-en")}, {"en": "Hi.", "de": "Hallo."}))  # doctest: +SKIP
    """
    from mlembed.encoding import encode

    items = list((sentences or DEFAULT_SENTENCES).items())
    if control:
        items.append(CONTROL_SENTENCE)
    langs = [lang for lang, _ in items]
    texts = [text for _, text in items]
    embeddings = {
        name: encode(texts, model if hasattr(model, "encode") or not callable(model) else model(), normalize=True)
        for name, model in models.items()
    }
    columns = {name: cosine_to_first(emb) for name, emb in embeddings.items()}
    width = max(_display_width(t) for t in texts) + 2
    head = _pad("lang", 8) + _pad("sentence", width) + "".join(f"{name:>14s}" for name in columns)
    rows = [f"{name}: embeddings {emb.shape}" for name, emb in embeddings.items()] + [head, "-" * len(head)]
    for i, (lang, text) in enumerate(zip(langs, texts)):
        rows.append(_pad(lang, 8) + _pad(text, width) + "".join(f"{col[i]:14.3f}" for col in columns.values()))
    rows.append("(cosine similarity to the first sentence; en* is an unrelated control)" if control else "")
    return "\n".join(rows).rstrip()
