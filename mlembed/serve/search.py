"""Search several sentence indexes at once, with cosine or ratio-margin scores.

A cosine depends on the query: a short or generic query scores high against everything. The ratio
margin (Artetxe & Schwenk 2019) divides it by the mean cosine of the two sentences to their own
``margin_k`` nearest neighbours, so a score means the same across queries (about 1.0: no better than
the neighbourhood; the BUCC-tuned threshold for a translation is about 1.06):

    margin(x, y) = cos(x, y) / ((mean_k cos(x, NN_k(x)) + mean_k cos(y, NN_k(y))) / 2)

``NN_k(x)`` are the query's nearest neighbours over all the indexes searched; ``NN_k(y)`` are the
hit's nearest other sentences in its own index (computed once per sentence and remembered).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlembed.index import SentenceIndex

logger = logging.getLogger(__name__)


@dataclass
class ServedHit:
    """One hit: ``score`` is the margin when asked for, else the cosine."""

    score: float
    cosine: float
    margin: float | None
    sentence: str
    lang: str | None
    index: str
    id: int

    def to_dict(self) -> dict:
        return asdict(self)


class IndexSet:
    """Named :class:`~mlembed.index.SentenceIndex` objects searched together (results merged by score).

    Example:
        >>> import numpy as np
        >>> s = IndexSet({})
        >>> s.search(np.zeros((1, 4), np.float32), k=3)
        [[]]
    """

    def __init__(self, indexes: dict[str, SentenceIndex], margin_k: int = 4):
        self.indexes = indexes
        self.margin_k = margin_k
        self._hub: dict[str, dict[int, float]] = {name: {} for name in indexes}

    @classmethod
    def load(cls, folders: list[str], model: object) -> IndexSet:
        """Open index folders, each checked against ``model`` (a different model is refused).

        Names are the folder names (``name=FOLDER`` sets one); two indexes may not share a name.
        """
        indexes: dict[str, SentenceIndex] = {}
        for spec in folders:
            name, sep, folder = spec.partition("=")
            if not sep:
                name, folder = Path(spec).resolve().name, spec
            if name in indexes:
                raise ValueError(f"two indexes named {name!r}: name them with NAME=FOLDER")
            indexes[name] = SentenceIndex.load(folder, model=model)
        return cls(indexes)

    def describe(self) -> list[dict]:
        """Name, language, size, FAISS factory and model of each index."""
        return [
            {
                "name": name,
                "lang": idx.meta.get("lang"),
                "count": idx.meta["count"],
                "factory": idx.meta["factory"],
                "model": idx.meta["model"],
            }
            for name, idx in self.indexes.items()
        ]

    def _vectors(self, idx: SentenceIndex, ids: np.ndarray) -> np.ndarray:
        import faiss

        try:
            return idx.index.reconstruct_batch(ids.astype(np.int64))
        except RuntimeError:  # IVF indexes reconstruct only once they keep a direct map
            faiss.extract_index_ivf(idx.index).make_direct_map()
            return idx.index.reconstruct_batch(ids.astype(np.int64))

    def _hub_means(self, name: str, ids: list[int]) -> dict[int, float]:
        """Mean cosine of each sentence to its ``margin_k`` nearest other sentences in its own index."""
        known = self._hub[name]
        todo = np.array(sorted({i for i in ids if i not in known}), dtype=np.int64)
        if len(todo):
            idx = self.indexes[name]
            k = min(self.margin_k + 1, idx.index.ntotal)
            scores, found = idx.search_vectors(self._vectors(idx, todo), k)
            for i, row_s, row_i in zip(todo, scores, found):
                others = row_s[(row_i != i) & (row_i >= 0)][: self.margin_k]
                known[int(i)] = float(others.mean()) if len(others) else 0.0
        return {i: known[i] for i in ids}

    def search(
        self, vectors: np.ndarray, k: int = 10, margin: bool = False, names: list[str] | None = None
    ) -> list[list[ServedHit]]:
        """The ``k`` best hits per query vector (L2-normalised rows), best first."""
        chosen = names if names is not None else list(self.indexes)
        unknown = [n for n in chosen if n not in self.indexes]
        if unknown:
            raise KeyError(f"no index named {', '.join(map(repr, unknown))}; loaded: {', '.join(self.indexes)}")
        depth = max(2 * k, self.margin_k) if margin else k  # margin re-ranks a deeper cosine list
        per_query: list[list[tuple[float, str, int]]] = [[] for _ in range(len(vectors))]
        for name in chosen:
            idx = self.indexes[name]
            scores, ids = idx.search_vectors(vectors, min(depth, idx.index.ntotal))
            for q, (row_s, row_i) in enumerate(zip(scores, ids)):
                per_query[q] += [(float(s), name, int(i)) for s, i in zip(row_s, row_i) if i >= 0]
        out = []
        for candidates in per_query:
            candidates.sort(key=lambda c: -c[0])
            candidates = candidates[:depth]
            margins: list[float | None] = [None] * len(candidates)
            if margin and candidates:
                fwd = float(np.mean([c[0] for c in candidates[: self.margin_k]]))
                hub = {n: self._hub_means(n, [i for _, m, i in candidates if m == n]) for n in chosen}
                margins = [c / max((fwd + hub[n][i]) / 2, 1e-6) for c, n, i in candidates]
            hits = [
                ServedHit(
                    score=m if m is not None else c,
                    cosine=c,
                    margin=m,
                    sentence=self.indexes[n].sentences[i],
                    lang=self.indexes[n].meta.get("lang"),
                    index=n,
                    id=i,
                )
                for (c, n, i), m in zip(candidates, margins)
            ]
            hits.sort(key=lambda h: -h.score)
            out.append(hits[:k])
        return out
