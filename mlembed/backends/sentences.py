"""The sentences a backend is calibrated and judged on: real translations from the machine's gettext catalogs.

Every machine of this kind carries ~3,700 catalogs under ``/usr/share/locale`` (see
:mod:`mlembed.data.gettext_catalogs`); a fixed, evenly spread choice of catalogs gives English UI text
and its translations in many scripts, short and long. Half of the pairs calibrate int8, the other half,
never seen by the calibration, decide whether a backend keeps quality and how fast it is.
"""

from __future__ import annotations

import functools
import random
from collections import Counter

from mlembed.data.gettext_catalogs import SYSTEM_LOCALE_DIR, catalog_files, catalog_messages, message_pairs
from mlembed.files import DataError

#: catalogs sampled, evenly spread over the sorted list (locales and software alike)
CATALOGS = 64
#: (English, translation) pairs per half; half of them with an English side of 60+ characters
PAIRS = 128


@functools.lru_cache(maxsize=4)
def _catalog_pairs(directory: str) -> tuple[dict[str, str], dict[str, str]]:
    """(English, translation) of 3+ words from a fixed, evenly spread choice of catalogs: ``(short, long)``,
    long meaning an English side of 60+ characters. Empty when the folder has no catalogs."""
    try:
        files = catalog_files(directory)
    except FileNotFoundError:
        return {}, {}
    step = max(1, len(files) // CATALOGS)
    short: dict[str, str] = {}
    long: dict[str, str] = {}
    for path, _ in files[::step][:CATALOGS]:
        try:
            for msgid, msgstr in catalog_messages(path):
                for src, tgt in message_pairs(msgid, msgstr):
                    if len(src.split()) >= 3:  # sentences, not menu labels
                        (long if len(src) >= 60 else short).setdefault(src, tgt)
        except DataError:
            continue
    return short, long


@functools.lru_cache(maxsize=4)
def probe_sentences(directory: str = SYSTEM_LOCALE_DIR, pairs: int = PAIRS) -> tuple[list[str], list[str]]:
    """``(calibration, held_out)``: each ``2 * pairs`` sentences (English and translation), disjoint, fixed.

    Empty lists when the folder has no catalogs (``auto`` then keeps torch and says why).

    Example:
        >>> calibration, held_out = probe_sentences()
        >>> len(calibration) == len(held_out) and not set(calibration) & set(held_out)
        True
    """
    rng = random.Random(0)
    chosen = []
    for pool in _catalog_pairs(directory):
        keys = sorted(pool)
        chosen += [(k, pool[k]) for k in rng.sample(keys, min(pairs, len(keys)))]
    rng.shuffle(chosen)
    calibration = [s for pair in chosen[0::2] for s in pair]
    held_out = [s for pair in chosen[1::2] for s in pair if s not in calibration]
    return calibration, held_out


#: gold pairs of the task probe (``mine``/``index build`` under ``--backend auto``); as many distractors per side
TASK_GOLD = 1000


@functools.lru_cache(maxsize=4)
def task_sentences(directory: str = SYSTEM_LOCALE_DIR, gold: int = TASK_GOLD) -> tuple[list[str], list[str], int]:
    """``(english, translations, n_gold)`` for judging an engine by a task: line ``i < n_gold`` of each side is a
    gold pair, the rest are distractors (the English of other pairs on one side, the translations of yet other
    pairs on the other, so none is a known translation of another); none of them calibrates int8.

    Example:
        >>> english, translations, n_gold = task_sentences()
        >>> n_gold == 1000 and len(english) == len(translations) == 2 * n_gold
        True
    """
    calibration = set(probe_sentences(directory)[0])
    short, long = _catalog_pairs(directory)
    pairs = {**short, **long}
    once = Counter(pairs.values())  # a translation shared by two English sentences is no one's gold
    pool = {k: v for k, v in pairs.items() if once[v] == 1 and k not in calibration and v not in calibration}
    keys = sorted(pool)
    picked = random.Random(1).sample(keys, min(3 * gold, len(keys)))
    n = len(picked) // 3
    english = [k for k in picked[:n]] + [k for k in picked[n : 2 * n]]
    translations = [pool[k] for k in picked[:n]] + [pool[k] for k in picked[2 * n : 3 * n]]
    return english, translations, n
