"""Translation retrieval accuracy (Tatoeba as in LASER/XTREME, or any parallel data).

For aligned pairs (x_i, y_i) the accuracy x->y is the share of i whose nearest neighbour among all
y by cosine similarity is y_i; y->x likewise; the task reports both and their mean.  The k-NN is
exact FAISS inner product on L2-normalised vectors.  A tie for the nearest neighbour goes to the
lowest index, as ``np.argmax`` does in sentence-transformers' ``TranslationEvaluator``, so the two
agree exactly; with ``margin`` the neighbour is chosen by the ratio margin of Artetxe & Schwenk
(2019) computed by :func:`mlembed.mine.mine_embeddings` instead of by raw cosine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mlembed.evaluation.base import EmbeddingCache, TaskResult, normalize

#: Scores closer than this to the best one count as a tie (identical sentences give equal vectors,
#: whose dot products may differ in the last float32 bit depending on BLAS blocking).
TIE_TOLERANCE = 1e-6


def nearest_neighbours(queries: np.ndarray, keys: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product neighbours with FAISS ``IndexFlatIP``: ``(scores, indices)``.

    Example:
        >>> s, i = nearest_neighbours(np.eye(2, dtype="float32"), np.eye(2, dtype="float32"), k=1)
        >>> i.ravel().tolist()
        [0, 1]
    """
    import faiss

    keys = np.ascontiguousarray(keys, dtype=np.float32)
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(keys)))


def top1(queries: np.ndarray, keys: np.ndarray, k: int = 8, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Index of each query's nearest key by inner product; ties go to the lowest key index.

    Example:
        >>> keys = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype="float32")
        >>> top1(np.array([[1.0, 0.0]], dtype="float32"), keys).tolist()  # rows 1 and 2 tie
        [1]
    """
    scores, idx = nearest_neighbours(queries, keys, k)
    tied = (scores >= scores[:, :1] - tolerance) & (idx >= 0)
    return np.where(tied, idx, np.iinfo(np.int64).max).min(axis=1)


def retrieval_accuracy(src: np.ndarray, tgt: np.ndarray, margin: bool = False) -> dict[str, float]:
    """Accuracy x100 of finding row i of ``tgt`` from row i of ``src`` and back, and their mean.

    Inputs are embeddings of aligned pairs (any scale: they are normalised here).

    Example:
        >>> src = np.array([[1, 0], [0, 1], [1, 1]], dtype="float32")
        >>> tgt = np.array([[1, 0], [0, 1], [1, 0]], dtype="float32")  # rows 0 and 2 tie: row 0 wins
        >>> {k: round(v, 2) for k, v in retrieval_accuracy(src, tgt).items()}
        {'src2tgt': 66.67, 'tgt2src': 66.67, 'accuracy': 66.67}
    """
    if len(src) != len(tgt) or len(src) == 0:
        raise ValueError(f"need the same positive number of source and target rows, got {len(src)} and {len(tgt)}")
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(
            f"the two sides have different dimensions ({src.shape[1]} and {tgt.shape[1]}): cross-model "
            "retrieval needs a model distilled into the other model's space"
        )
    src, tgt = normalize(src), normalize(tgt)
    gold = np.arange(len(src))
    if margin:
        fwd, bwd = _margin_top1(src, tgt), _margin_top1(tgt, src)
    else:
        fwd, bwd = top1(src, tgt), top1(tgt, src)
    s2t = float((fwd == gold).mean() * 100)
    t2s = float((bwd == gold).mean() * 100)
    return {"src2tgt": s2t, "tgt2src": t2s, "accuracy": (s2t + t2s) / 2}


def _margin_top1(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Best key per query by ratio margin (forward candidates of the shared mining code)."""
    from mlembed.mine import MiningOptions, mine_embeddings

    mined = mine_embeddings(queries, keys, MiningOptions(k=4, margin="ratio", mode="forward", threshold=None))
    best = np.full(len(queries), -1, dtype=np.int64)
    best[mined.src_idx] = mined.tgt_idx
    return best


@dataclass
class PairGroup:
    """Aligned sentences of one language pair, with the key the report uses for it."""

    key: str
    src: list[str]
    tgt: list[str]
    src_lang: str = ""
    tgt_lang: str = ""


def group_pairs(pairs: Iterable, key_fn=None) -> list[PairGroup]:
    """Group :class:`mlembed.data.Pair` objects by language pair, English side last, in first-seen order.

    ``read_pairs`` puts English first; retrieval wants the other language as the query side
    (Tatoeba's xx->eng), so pairs with English ``src`` are turned round.

    Example:
        >>> from types import SimpleNamespace as P
        >>> g = group_pairs([P(src="Hello", tgt="Hallo", src_lang="en", tgt_lang="de")])
        >>> g[0].key, g[0].src, g[0].tgt
        ('de-en', ['Hallo'], ['Hello'])
    """
    groups: dict[tuple[str, str], PairGroup] = {}
    for p in pairs:
        src, tgt, src_lang, tgt_lang = p.src, p.tgt, p.src_lang, p.tgt_lang
        if src_lang == "en" and tgt_lang != "en":
            src, tgt, src_lang, tgt_lang = tgt, src, tgt_lang, src_lang
        lk = (src_lang, tgt_lang)
        if lk not in groups:
            groups[lk] = PairGroup(key_fn(*lk) if key_fn else f"{lk[0]}-{lk[1]}", [], [], *lk)
        groups[lk].src.append(src)
        groups[lk].tgt.append(tgt)
    return list(groups.values())


class RetrievalTask:
    """Bitext retrieval accuracy on a parallel data spec; ``tatoeba`` names the LASER test set.

    Args:
        spec: a :func:`mlembed.data.read_pairs` spec (``tatoeba:DIR[:langs]``, ``ntrex:...``, ``tsv:...``).
        name: ``tatoeba`` (keys are LASER's 3-letter codes) or ``translation`` (keys ``xx-en``).
        margin: choose neighbours by ratio margin instead of cosine.
        limit: use at most this many pairs per language pair (the first ones).
        english: encode the English side with this cache (another model, e.g. the teacher) instead of the
            evaluated one: *cross-model* retrieval, an English index built with the teacher queried in other
            languages by a student distilled into the teacher's space.

    Example:
        >>> task = RetrievalTask("tatoeba:../shared/data/tatoeba:deu", name="tatoeba")  # doctest: +SKIP
        >>> task.evaluate(EmbeddingCache(load_model("muse"))).scores["deu"]  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: str,
        name: str = "translation",
        margin: bool = False,
        limit: int | None = None,
        english: EmbeddingCache | None = None,
    ):
        self.data_spec, self.name, self.margin, self.limit = spec, name, margin, limit
        self.english = english
        self.spec = spec if name == "tatoeba" else f"{name}:{spec}"
        self._groups: list[PairGroup] | None = None

    def groups(self) -> list[PairGroup]:
        """The pairs, read once and grouped by language pair."""
        if self._groups is None:
            from mlembed.data import read_pairs

            key_fn = _laser_key if self.data_spec.startswith("tatoeba:") else None
            groups = group_pairs(read_pairs(self.data_spec), key_fn)
            if self.limit:
                groups = [
                    PairGroup(g.key, g.src[: self.limit], g.tgt[: self.limit], g.src_lang, g.tgt_lang) for g in groups
                ]
            self._groups = groups
        return self._groups

    def evaluate(self, cache: EmbeddingCache) -> TaskResult:
        scores: dict[str, dict[str, float]] = {}
        sizes: dict[str, int] = {}
        for g in self.groups():
            tgt_cache = self.english if self.english is not None and g.tgt_lang == "en" else cache
            acc = retrieval_accuracy(cache.encode(g.src), tgt_cache.encode(g.tgt), margin=self.margin)
            scores[g.key] = {"xx2en": acc["src2tgt"], "en2xx": acc["tgt2src"], "accuracy": acc["accuracy"]}
            sizes[g.key] = len(g.src)
        meta = {
            "pairs": sizes,
            "similarity": "ratio margin (k=4)" if self.margin else "cosine",
            **({"english_side": self.english.name} if self.english is not None else {}),
            "note": "xx2en: non-English (or first) side queries the other side; accuracy = mean of both",
        }
        return TaskResult(self.name, self.spec, "test", "accuracy", scores, meta)


def _laser_key(src_lang: str, tgt_lang: str) -> str:
    """LASER's 3-letter file code for the non-English side (``zh`` -> ``cmn`` as in tatoeba.cmn-eng)."""
    from mlembed.languages import to_iso639_3

    return to_iso639_3(src_lang if tgt_lang in ("en", "eng") else tgt_lang)
