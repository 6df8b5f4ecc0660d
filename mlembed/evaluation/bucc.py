"""BUCC 2018 mining F1 (``bucc:DIR[:langs[:split]]``): the BUCC layout (``xx-en.SPLIT.xx`` and
``xx-en.SPLIT.en`` as ``id<TAB>sentence``, ``xx-en.SPLIT.gold`` as ``id_xx<TAB>id_en``), scored as
:mod:`mlembed.evaluation.mining` scores ``mining:`` (threshold tuned on ``training``, F1 x100 reported).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlembed.evaluation.base import EmbeddingCache, TaskResult
from mlembed.evaluation.mining import MINING_MODE, at_threshold, best_threshold, mine_candidates
from mlembed.files import DataError, read_lines


@dataclass
class BuccSplit:
    """One BUCC split of one language pair: id -> sentence on both sides and the gold id pairs."""

    src: dict[str, str]
    tgt: dict[str, str]
    gold: set[tuple[str, str]]


def _read_id_sentences(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line, text in read_lines(path):
        if not text:
            continue
        sid, sep, sentence = text.partition("\t")
        if not sep or not sid:
            raise DataError("expected id<TAB>sentence", path, line)
        out[sid] = sentence
    return out


def read_bucc_split(directory: str | os.PathLike, lang: str, split: str) -> BuccSplit:
    """Read ``LANG-en.SPLIT.{LANG,en,gold}`` from ``directory`` (or its ``LANG-en/`` subfolder).

    Example:
        >>> read_bucc_split("bucc2018", "de", "training")  # doctest: +SKIP
    """
    base = Path(directory)
    if (base / f"{lang}-en").is_dir():
        base = base / f"{lang}-en"
    stem = base / f"{lang}-en.{split}"
    paths = {side: Path(f"{stem}.{side}") for side in (lang, "en", "gold")}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"missing BUCC file {path.name} (expected {lang}-en.{split}.{{{lang},en,gold}})", path)
    src = _read_id_sentences(paths[lang])
    tgt = _read_id_sentences(paths["en"])
    gold = set()
    for line, text in read_lines(paths["gold"]):
        if not text:
            continue
        cols = text.split("\t")
        if len(cols) != 2:
            raise DataError("expected id_xx<TAB>id_en", paths["gold"], line)
        if cols[0] not in src or cols[1] not in tgt:
            raise DataError(
                f"gold pair {cols[0]} / {cols[1]} names an id absent from the sentence files", paths["gold"], line
            )
        gold.add((cols[0], cols[1]))
    return BuccSplit(src, tgt, gold)


def bucc_languages(directory: str | os.PathLike) -> list[str]:
    """Languages with BUCC files in ``directory`` (``de``, ``fr``, ``ru``, ``zh`` in BUCC 2018)."""
    found = {m.group(1) for p in Path(directory).rglob("*-en.*.gold") if (m := re.match(r"([a-z]+)-en\.", p.name))}
    if not found:
        raise DataError("no BUCC files (LANG-en.SPLIT.gold) here", directory)
    return sorted(found)


class BuccTask:
    """BUCC 2018 mining F1: threshold optimised on ``training``, F1 reported on ``split``.

    Duplicate sentences are encoded and mined once; a mined text pair is correct when any of its id
    combinations is a gold pair, and it counts as one prediction.

    Example:
        >>> BuccTask("bucc2018", ["de"]).evaluate(cache).scores["de-en"]["f1"]  # doctest: +SKIP
    """

    name = "bucc"

    def __init__(
        self,
        where: str,
        langs: Sequence[str] = (),
        split: str = "test",
        spec: str | None = None,
        tune_split: str = "training",
        mode: str = MINING_MODE,
    ):
        self.where, self.langs, self.split, self.tune_split, self.mode = where, list(langs), split, tune_split, mode
        self.spec = spec or f"bucc:{where}"

    def _score(self, cache: EmbeddingCache, data: BuccSplit) -> tuple[np.ndarray, np.ndarray, int]:
        src_texts = list(dict.fromkeys(data.src.values()))
        tgt_texts = list(dict.fromkeys(data.tgt.values()))
        src_ids: dict[str, list[str]] = {}
        tgt_ids: dict[str, list[str]] = {}
        for sid, s in data.src.items():
            src_ids.setdefault(s, []).append(sid)
        for tid, t in data.tgt.items():
            tgt_ids.setdefault(t, []).append(tid)
        mined = mine_candidates(cache, src_texts, tgt_texts, self.mode)
        correct = np.array(
            [
                any((a, b) in data.gold for a in src_ids[src_texts[i]] for b in tgt_ids[tgt_texts[j]])
                for i, j in zip(mined.src_idx, mined.tgt_idx)
            ],
            dtype=bool,
        )
        return mined.scores, correct, len(data.gold)

    def evaluate(self, cache: EmbeddingCache) -> TaskResult:
        scores, meta_lang = {}, {}
        for lang in self.langs or bucc_languages(self.where):
            tune = read_bucc_split(self.where, lang, self.tune_split)
            dev = best_threshold(*self._score(cache, tune))
            test_data = read_bucc_split(self.where, lang, self.split)
            s, c, n = self._score(cache, test_data)
            test = at_threshold(s, c, n, dev.threshold)
            scores[f"{lang}-en"] = {
                "f1": test.f1,
                "precision": test.precision,
                "recall": test.recall,
                "threshold": dev.threshold,
                "tune_f1": dev.f1,
            }
            meta_lang[f"{lang}-en"] = {"gold_pairs": n, "sentences": [len(test_data.src), len(test_data.tgt)]}
        meta = {
            "languages": meta_lang,
            "margin": "ratio, k=4",
            "mode": self.mode,
            "threshold_note": f"threshold maximises F1 on {self.tune_split}, F1 reported on {self.split}",
        }
        return TaskResult(self.name, self.spec, self.split, "f1", scores, meta)
