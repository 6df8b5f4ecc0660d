"""Balanced sampling of parallel pairs across languages, in one streaming pass.

Languages are very unequal in most corpora (gettext has 30k German pairs and 200 Dzongkha ones); a
uniform sample would be mostly the big languages. :func:`balanced_sample` keeps an independent
uniform reservoir per target language whose capacity shrinks as new languages appear, so memory is
bounded by ``max_pairs`` whatever the size of the stream.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable

from mlembed.data import Pair


def balanced_sample(
    pairs: Iterable[Pair], max_pairs: int | None = None, per_language: int | None = None, seed: int = 0
) -> list[Pair]:
    """Sample pairs with about the same count per target language.

    Args:
        max_pairs: total cap, shared equally by the languages seen (``None``: no total cap).
        per_language: cap per language (``None``: only the total cap applies).

    Languages with fewer pairs than their share keep all of theirs. The result is shuffled
    deterministically by ``seed``.

    Example:
        >>> data = [Pair(f"s{i}", f"t{i}", "en", "de") for i in range(100)] + [Pair("a", "b", "en", "fr")]
        >>> sample = balanced_sample(data, max_pairs=10)
        >>> sorted({p.tgt_lang for p in sample}), sum(p.tgt_lang == "de" for p in sample)
        (['de', 'fr'], 5)
    """
    rng = random.Random(seed)
    reservoirs: dict[str, list[Pair]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)

    def capacity() -> float:
        caps = [per_language or float("inf")]
        if max_pairs is not None:
            caps.append(max(1, max_pairs // max(1, len(reservoirs))))
        return min(caps)

    for pair in pairs:
        lang = pair.tgt_lang
        is_new = lang not in reservoirs
        reservoir = reservoirs[lang]
        if is_new and max_pairs is not None:  # a new language: every reservoir shrinks to the new share
            cap = capacity()
            for other in reservoirs.values():
                if len(other) > cap:
                    rng.shuffle(other)
                    del other[int(cap) :]
        seen[lang] += 1
        cap = capacity()
        if len(reservoir) < cap:
            reservoir.append(pair)
        else:  # reservoir sampling (Algorithm R) within the language
            j = rng.randrange(seen[lang])
            if j < cap:
                reservoir[j] = pair
    sample = [p for lang in sorted(reservoirs) for p in reservoirs[lang]]
    rng.shuffle(sample)
    return sample
