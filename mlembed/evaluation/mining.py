"""Bitext mining F1: find gold translation pairs hidden among distractor sentences.

Scoring shared with :mod:`mlembed.evaluation.bucc` (the BUCC 2018 layout):

* :class:`MiningTask` (``mining:SPEC``): the gold pairs of any parallel data spec (e.g. NTREX) are
  mixed with distractor sentences on both sides -- sentences of the same languages taken from other
  data (``distractors``, in order of preference), at ``ratio`` distractors per gold pair on each side
  where the data allow, sampled by a seeded hash of the text.
  English distractors come only from pairs whose other language is not the gold one, and English
  sentences that occur in any pair with the gold language are dropped, so that a distractor is
  never the known translation of another distractor.  Sentences are deduplicated; a mined pair is
  correct when its two texts are a gold pair.

Mining is :func:`mlembed.mine.mine_embeddings` (by default ratio margin, k=4, ``max`` retrieval as in LASER's
BUCC script).  The score threshold is the one that maximises F1 on a separate split (``training``
for BUCC; for ``mining:`` half of the gold documents, the other half being reported), and the
report gives that threshold, precision, recall and F1 x100, plus the oracle F1 of the reported split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlembed.evaluation.base import EmbeddingCache, TaskResult

MINING_MODE = "max"


@dataclass
class Operating:
    """Precision, recall and F1 (x100) of the candidates scoring ``>= threshold``."""

    threshold: float
    precision: float
    recall: float
    f1: float


def best_threshold(scores: np.ndarray, correct: np.ndarray, n_gold: int) -> Operating:
    """The score threshold maximising F1 (ties: the highest threshold).

    Example:
        >>> op = best_threshold(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 1, 0, 1]), n_gold=4)
        >>> op.threshold, round(op.f1, 1)
        (0.6, 75.0)
    """
    scores, correct = np.asarray(scores, np.float64), np.asarray(correct, bool)
    if len(scores) == 0:
        return Operating(float("inf"), 0.0, 0.0, 0.0)
    from mlembed.mine import f1_sweep

    s, p, r, f = f1_sweep(scores, correct, n_gold)
    i = int(np.argmax(f))
    return Operating(float(s[i]), float(p[i] * 100), float(r[i] * 100), float(f[i] * 100))


def at_threshold(scores: np.ndarray, correct: np.ndarray, n_gold: int, threshold: float) -> Operating:
    """Precision, recall, F1 x100 of the candidates scoring ``>= threshold``.

    Example:
        >>> at_threshold(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 4, 0.75)
        Operating(threshold=0.75, precision=50.0, recall=25.0, f1=33.33333333333333)
    """
    keep = np.asarray(scores) >= threshold
    tp = int(np.asarray(correct, bool)[keep].sum())
    n_pred = int(keep.sum())
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * tp / (n_pred + n_gold) if tp else 0.0
    return Operating(float(threshold), p * 100, r * 100, f * 100)


def mine_candidates(
    cache: EmbeddingCache, src: list[str], tgt: list[str], mode: str = MINING_MODE, margin: str = "ratio"
):
    """Mine all candidate pairs between two sentence lists (k=4, no threshold), best first."""
    from mlembed.mine import MiningOptions, mine_embeddings

    options = MiningOptions(k=4, margin=margin, mode=mode, threshold=None)
    return mine_embeddings(cache.unit(src), cache.unit(tgt), options)


def _same_language(tag: str, wanted: str) -> bool:
    from mlembed.languages import lang_matches

    return lang_matches(tag, wanted) or lang_matches(wanted, tag)


@dataclass
class DistractorPool:
    """Candidate distractor sentences per side for one gold language pair (deduplicated, in read order)."""

    src: list[str]
    tgt: list[str]


def distractor_pool(specs: Sequence[str], src_lang: str, tgt_lang: str = "en") -> DistractorPool:
    """Sentences in ``src_lang`` and in ``tgt_lang`` from the pairs of ``specs``, unaligned.

    ``tgt_lang`` sentences are taken only from pairs whose other side is not ``src_lang``, minus
    those that occur in any pair with ``src_lang`` (so no distractor is another one's translation).

    Example:
        >>> pool = distractor_pool(["tsv:../shared/data/tatoeba-challenge"], "de")  # doctest: +SKIP
    """
    from mlembed.data import read_pairs

    src: dict[str, None] = {}
    tgt: dict[str, None] = {}
    linked: set[str] = set()
    for p in read_pairs(list(specs)):
        for text, lang, other_text, other_lang in (
            (p.src, p.src_lang, p.tgt, p.tgt_lang),
            (p.tgt, p.tgt_lang, p.src, p.src_lang),
        ):
            if _same_language(lang, src_lang):
                src.setdefault(text)
                if _same_language(other_lang, tgt_lang):
                    linked.add(other_text)
            elif _same_language(lang, tgt_lang) and not _same_language(other_lang, src_lang):
                tgt.setdefault(text)
    return DistractorPool(list(src), [t for t in tgt if t not in linked])


def hashed_sample(texts: Sequence[str], n: int, seed: int, exclude: set[str] = frozenset()) -> list[str]:
    """``n`` texts chosen by a seeded hash of the text (so overlapping pools give overlapping samples).

    Example:
        >>> hashed_sample(["a", "b", "c", "d"], 2, seed=0) == hashed_sample(["d", "c", "b", "a"], 2, seed=0)
        True
        >>> hashed_sample(["a", "b", "c"], 5, seed=0, exclude={"b"})
        ['c', 'a']
    """
    import hashlib

    def key(text: str) -> bytes:
        return hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()

    return sorted((t for t in texts if t not in exclude), key=key)[: max(0, n)]


def select_distractors(
    specs: Sequence[str], src_lang: str, tgt_lang: str, n: int, seed: int, exclude_src: set[str], exclude_tgt: set[str]
) -> DistractorPool:
    """Up to ``n`` distractors per side: from the first spec, then the next ones where it runs short."""
    src: list[str] = []
    tgt: list[str] = []
    for spec in specs:
        pool = distractor_pool([spec], src_lang, tgt_lang)
        src += hashed_sample(pool.src, n - len(src), seed, exclude_src | set(src))
        tgt += hashed_sample(pool.tgt, n - len(tgt), seed, exclude_tgt | set(tgt))
        if len(src) >= n and len(tgt) >= n:
            break
    return DistractorPool(src, tgt)


class MiningTask:
    """Gold pairs of ``gold_spec`` hidden among distractors; F1 on one half at the other half's best threshold.

    Args:
        gold_spec: a :func:`mlembed.data.read_pairs` spec (e.g. ``ntrex:DIR:deu,zho-CN``).
        distractors: data specs to draw distractor sentences from (e.g. ``tsv:DIR/tatoeba-challenge``),
            in order of preference: later specs only fill up a side the earlier ones leave short.
        ratio: distractors per gold pair on each side (fewer where all the specs together have fewer).
        seed: seed of the sampling.
        limit: at most this many gold pairs per language.
        mode: which direction's best candidates are kept (:data:`mlembed.mine.MODES`).
        margin: how a candidate is scored (:data:`mlembed.mine.MARGINS`).

    Besides the F1 at the dev half's threshold, each language reports ``default_f1``: the test
    half's F1 at :data:`mlembed.mine.DEFAULT_THRESHOLDS` for the margin (what ``mlembed mine`` uses
    when it is not calibrated), and ``oracle_f1``: the test half's F1 at its own best threshold.

    The gold pairs are split in two by NTREX document (for ``ntrex:`` specs) or by position: the
    first half (``dev``) chooses the threshold, the second (``test``) is reported.  Distractor
    sources are split at random the same way; all sentences are mined together in one run.

    Example:
        >>> task = MiningTask("ntrex:../shared/data/ntrex128:deu", ["tsv:../shared/data/tatoeba-challenge"])  # doctest: +SKIP
    """

    name = "mining"

    def __init__(
        self,
        gold_spec: str,
        distractors: Sequence[str] = (),
        ratio: float = 10.0,
        seed: int = 0,
        limit: int | None = None,
        spec: str | None = None,
        mode: str = MINING_MODE,
        margin: str = "ratio",
    ):
        from mlembed.mine import MARGINS, MODES

        if mode not in MODES or margin not in MARGINS:
            raise ValueError(f"mode must be one of {MODES} and margin one of {MARGINS}, got {mode!r}, {margin!r}")
        self.gold_spec, self.distractors, self.ratio, self.seed, self.limit = (
            gold_spec,
            list(distractors),
            ratio,
            seed,
            limit,
        )
        self.spec = spec or f"mining:{gold_spec}"
        self.mode, self.margin = mode, margin
        self._setups: list[dict] | None = None
        self._shared: MiningTask | None = None  # a task whose setups this one reuses (scored_by)

    def scored_by(self, margin: str, mode: str) -> MiningTask:
        """The same sentences, gold pairs and split (built once) mined with another ``margin`` and ``mode``.

        Example:
            >>> task = MiningTask("tsv:gold.tsv")
            >>> task.scored_by("distance", "intersect").margin
            'distance'
        """
        other = MiningTask(
            self.gold_spec, self.distractors, self.ratio, self.seed, self.limit, self.spec, mode=mode, margin=margin
        )
        other._shared = self
        return other

    def _dev_mask(self, n: int) -> np.ndarray:
        """True for gold pairs of the threshold (dev) half: by NTREX document where known."""
        from mlembed.data import parse_spec

        parsed = parse_spec(self.gold_spec)
        if parsed.kind == "ntrex":
            from mlembed.data import ntrex_documents

            docs = ntrex_documents(parsed.where)[:n]
            if len(docs) == n:
                order = list(dict.fromkeys(docs))
                dev_docs = set(order[: len(order) // 2])
                return np.array([d in dev_docs for d in docs])
        return np.arange(n) < n // 2

    def setups(self) -> list[dict]:
        """Per language pair: sentences of both sides, gold pairs and the dev/test assignment of sources."""
        if self._shared is not None:
            self._setups = self._shared.setups()
        if self._setups is not None:
            return self._setups
        from mlembed.data import read_pairs
        from mlembed.evaluation.retrieval import group_pairs

        rng = np.random.default_rng(self.seed)
        setups = []
        for g in group_pairs(read_pairs(self.gold_spec)):
            src_gold, tgt_gold = g.src[: self.limit], g.tgt[: self.limit]
            src_lang, tgt_lang = g.src_lang, g.tgt_lang
            dev_gold = self._dev_mask(len(src_gold))
            want = int(round(self.ratio * len(src_gold)))
            chosen = select_distractors(
                self.distractors, src_lang, tgt_lang, want, self.seed, set(src_gold), set(tgt_gold)
            )
            src_d, tgt_d = chosen.src, chosen.tgt
            src_all = list(dict.fromkeys(src_gold + src_d))
            tgt_all = list(dict.fromkeys(tgt_gold + tgt_d))
            src_id = {s: i for i, s in enumerate(src_all)}
            tgt_id = {t: i for i, t in enumerate(tgt_all)}
            gold = {(src_id[s], tgt_id[t]) for s, t in zip(src_gold, tgt_gold)}
            src_dev = np.zeros(len(src_all), dtype=bool)
            src_dev[len(dict.fromkeys(src_gold)) :] = rng.random(len(src_all) - len(dict.fromkeys(src_gold))) < 0.5
            for s, dev in zip(src_gold, dev_gold):
                src_dev[src_id[s]] = dev
            setups.append(
                {
                    "key": g.key,
                    "src": src_all,
                    "tgt": tgt_all,
                    "gold": gold,
                    "src_dev": src_dev,
                    "distractors": {
                        "src": len(src_all) - len(set(src_gold)),
                        "tgt": len(tgt_all) - len(set(tgt_gold)),
                    },
                }
            )
        self._setups = setups
        return setups

    def evaluate(self, cache: EmbeddingCache) -> TaskResult:
        from mlembed.mine import DEFAULT_THRESHOLDS

        scores, meta_lang = {}, {}
        for st in self.setups():
            mined = mine_candidates(cache, st["src"], st["tgt"], self.mode, self.margin)
            correct = np.array(
                [(int(i), int(j)) in st["gold"] for i, j in zip(mined.src_idx, mined.tgt_idx)], dtype=bool
            )
            on_dev = st["src_dev"][mined.src_idx]
            gold_dev = sum(1 for i, _ in st["gold"] if st["src_dev"][i])
            gold_test = len(st["gold"]) - gold_dev
            dev = best_threshold(mined.scores[on_dev], correct[on_dev], gold_dev)
            test = at_threshold(mined.scores[~on_dev], correct[~on_dev], gold_test, dev.threshold)
            oracle = best_threshold(mined.scores[~on_dev], correct[~on_dev], gold_test)
            default = at_threshold(mined.scores[~on_dev], correct[~on_dev], gold_test, DEFAULT_THRESHOLDS[self.margin])
            scores[st["key"]] = {
                "f1": test.f1,
                "precision": test.precision,
                "recall": test.recall,
                "threshold": dev.threshold,
                "dev_f1": dev.f1,
                "oracle_f1": oracle.f1,
                "default_f1": default.f1,
                "default_precision": default.precision,
                "default_recall": default.recall,
            }
            meta_lang[st["key"]] = {
                "gold_pairs": len(st["gold"]),
                "gold_dev": gold_dev,
                "gold_test": gold_test,
                "source_sentences": len(st["src"]),
                "target_sentences": len(st["tgt"]),
                "distractors": st["distractors"],
            }
        meta = {
            "languages": meta_lang,
            "distractors": self.distractors,
            "ratio": self.ratio,
            "seed": self.seed,
            "margin": f"{self.margin}, k=4",
            "mode": self.mode,
            "threshold_note": "threshold maximises F1 on the dev half (by document), F1 reported on the test half",
        }
        return TaskResult(self.name, self.spec, "test", "f1", scores, meta)
