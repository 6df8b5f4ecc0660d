"""What every evaluation task shares: the result object and a per-model embedding cache.

A task turns sentences into vectors only through an :class:`EmbeddingCache`, so when several tasks
(or both directions of one task) see the same sentence it is encoded once per model and run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class TaskResult:
    """Scores of one model on one task: per language key, a dict of metrics (x100 where a percentage).

    ``main_metric`` names the metric that ``main_score`` averages over the languages (the figure a
    paper would quote); ``metadata`` holds counts, thresholds and settings.

    Example:
        >>> r = TaskResult("tatoeba", "tatoeba:DIR", "test", "accuracy",
        ...                {"deu": {"accuracy": 90.0}, "fra": {"accuracy": 80.0}})
        >>> r.main_score, r.per_language
        (85.0, {'deu': 90.0, 'fra': 80.0})
    """

    task: str
    spec: str
    split: str
    main_metric: str
    scores: dict[str, dict[str, float]]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def per_language(self) -> dict[str, float]:
        """``{language key: main metric}`` in the task's language order."""
        return {lang: float(s[self.main_metric]) for lang, s in self.scores.items()}

    @property
    def main_score(self) -> float:
        """Unweighted mean of the main metric over the language keys."""
        values = list(self.per_language.values())
        return float(np.mean(values)) if values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``main_score`` included)."""
        out = asdict(self)
        out["main_score"] = self.main_score
        return out


class Task(Protocol):
    """An evaluation task: a name, the spec it was built from, and ``evaluate(cache) -> TaskResult``."""

    name: str
    spec: str

    def evaluate(self, cache: EmbeddingCache) -> TaskResult: ...


class EmbeddingCache:
    """Encode sentences with one model, remembering every vector so a sentence is encoded once.

    Vectors are stored as the model returns them (not normalised: the MSE task needs them raw);
    :meth:`unit` gives L2-normalised copies for cosine work.

    Example:
        >>> from mlembed.models import load_model
        >>> cache = EmbeddingCache(load_model("minilm-en"), show_progress=False)
        >>> cache.encode(["Hello", "Hi", "Hello"]).shape, cache.encoded
        ((3, 384), 2)
    """

    def __init__(self, model: Any, batch_size: int = 64, show_progress: bool = True, name: str = "model"):
        self.model = model
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.name = name
        self._rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self.encoded = 0

    def _all(self) -> np.ndarray:
        if self._matrix is None or len(self._matrix) != self.encoded:
            self._matrix = np.concatenate(self._blocks) if self._blocks else np.zeros((0, 0), np.float32)
            self._blocks = [self._matrix]
        return self._matrix

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """Vectors for ``sentences`` (rows in order), encoding only those not seen before."""
        from mlembed.encoding import encode

        new = list(dict.fromkeys(s for s in sentences if s not in self._rows))
        if new:
            logger.info("[%s] encoding %s sentences", self.name, f"{len(new):,}")
            vectors = encode(new, self.model, batch_size=self.batch_size, show_progress=self.show_progress)
            for i, text in enumerate(new):
                self._rows[text] = self.encoded + i
            self._blocks.append(np.asarray(vectors, dtype=np.float32))
            self.encoded += len(new)
        if not sentences:
            return np.zeros((0, self._all().shape[1] if self.encoded else 0), np.float32)
        return self._all()[[self._rows[s] for s in sentences]]

    def unit(self, sentences: Sequence[str]) -> np.ndarray:
        """L2-normalised vectors for ``sentences`` (cosine similarity = dot product)."""
        return normalize(self.encode(sentences))


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (zero rows stay zero).

    Example:
        >>> [round(float(v), 6) for v in normalize(np.array([[3.0, 4.0]]))[0]]
        [0.6, 0.8]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
