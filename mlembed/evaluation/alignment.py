"""Sentence-alignment accuracy: strict and lax precision, recall and F1 over beads, as Vecalign's scorer defines
them (after Sennrich & Volk 2011), counts pooled over documents.

* Beads empty on both sides are ignored.
* A test bead is a **strict** hit when the gold holds exactly that bead, a **lax** hit when it shares a target
  sentence with the gold beads of any of its source sentences.
* Precision is taken over every test bead (insertions and deletions included); recall is the same with gold
  and test swapped, over beads with both sides non-empty; F1 is their harmonic mean.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from mlembed.files import DataError

BeadPair = tuple[tuple[int, ...], tuple[int, ...]]

_BEAD = re.compile(r"^\[([\d,\s]*)\]:\[([\d,\s]*)\](?::\s*(\S+))?\s*$")


def parse_bead(line: str) -> BeadPair:
    """``[0]:[0, 1]`` or ``[0]:[0, 1]:0.25`` -> ``((0,), (0, 1))``.

    Example:
        >>> parse_bead("[]:[5]:0.1")
        ((), (5,))
    """
    match = _BEAD.match(line.strip())
    if not match:
        raise ValueError(f"expected a bead such as [0]:[0, 1], got {line.strip()[:60]!r}")
    side = [tuple(int(x) for x in part.split(",") if x.strip()) for part in match.groups()[:2]]
    return side[0], side[1]


def read_beads(path: str | Path) -> list[BeadPair]:
    """The beads of a file in Vecalign's and Bertalign's format, one a line.

    Raises :class:`DataError` naming the file and line of a line that is not a bead.
    """
    beads = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            beads.append(parse_bead(line))
        except ValueError as exc:
            raise DataError(str(exc), path, number) from None
    return beads


def _counts(gold: Iterable[BeadPair], test: Iterable[BeadPair]) -> tuple[int, int, int, int]:
    """(strict hits, strict misses, lax hits, lax misses) of ``test`` against ``gold``."""
    gold_set = {b for b in gold if b[0] or b[1]}
    linked: dict[int, set[int]] = defaultdict(set)
    for src, tgt in gold_set:
        for s in src:
            linked[s].update(tgt)
    strict = miss = lax = lax_miss = 0
    for bead in {b for b in test if b[0] or b[1]}:
        if bead in gold_set:
            strict, lax = strict + 1, lax + 1
            continue
        miss += 1
        targets = set().union(*(linked[s] for s in bead[0])) if bead[0] else set()
        if targets & set(bead[1]):
            lax += 1
        else:
            lax_miss += 1
    return strict, miss, lax, lax_miss


def alignment_scores(gold: Sequence[Sequence[BeadPair]], test: Sequence[Sequence[BeadPair]]) -> dict[str, float]:
    """Strict and lax precision, recall and F1 of ``test`` against ``gold``, one list of beads per document.

    Example:
        >>> gold = [[((0,), (0,)), ((1,), (1, 2)), ((), (3,))]]
        >>> test = [[((0,), (0,)), ((1,), (1,)), ((), (2,)), ((), (3,))]]
        >>> s = alignment_scores(gold, test)
        >>> round(s["precision_strict"], 3), round(s["recall_strict"], 3), round(s["f1_lax"], 3)
        (0.5, 0.5, 0.857)
    """
    if len(gold) != len(test):
        raise ValueError(f"{len(gold)} gold documents but {len(test)} test documents")
    p = [0, 0, 0, 0]
    r = [0, 0, 0, 0]
    for g, t in zip(gold, test):
        p = [x + y for x, y in zip(p, _counts(g, t))]
        both_g = [b for b in g if b[0] and b[1]]
        both_t = [b for b in t if b[0] and b[1]]
        r = [x + y for x, y in zip(r, _counts(both_t, both_g))]

    def ratio(hit: int, miss: int) -> float:
        return hit / (hit + miss) if hit + miss else 0.0

    def f1(a: float, b: float) -> float:
        return 2 * a * b / (a + b) if a + b else 0.0

    ps, pl, rs, rl = ratio(p[0], p[1]), ratio(p[2], p[3]), ratio(r[0], r[1]), ratio(r[2], r[3])
    return {
        "precision_strict": ps,
        "recall_strict": rs,
        "f1_strict": f1(ps, rs),
        "precision_lax": pl,
        "recall_lax": rl,
        "f1_lax": f1(pl, rl),
    }
