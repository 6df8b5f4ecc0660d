"""The sentences a backend is calibrated and judged on: real translations from the machine's gettext catalogs.

Every machine of this kind carries ~3,700 catalogs under ``/usr/share/locale`` (see
:mod:`mlembed.data.gettext_catalogs`); a fixed, evenly spread choice of catalogs gives English UI text
and its translations in many scripts, short and long. Half of the pairs calibrate int8, the other half,
never seen by the calibration, decide whether a backend keeps quality and how fast it is.
"""

from __future__ import annotations

import functools
import random

from mlembed.data.gettext_catalogs import SYSTEM_LOCALE_DIR, catalog_files, catalog_messages, message_pairs
from mlembed.files import DataError

#: catalogs sampled, evenly spread over the sorted list (locales and software alike)
CATALOGS = 64
#: (English, translation) pairs per half; half of them with an English side of 60+ characters
PAIRS = 128


@functools.lru_cache(maxsize=4)
def probe_sentences(directory: str = SYSTEM_LOCALE_DIR, pairs: int = PAIRS) -> tuple[list[str], list[str]]:
    """``(calibration, held_out)``: each ``2 * pairs`` sentences (English and translation), disjoint, fixed.

    Empty lists when the folder has no catalogs (``auto`` then keeps torch and says why).

    Example:
        >>> calibration, held_out = probe_sentences()
        >>> len(calibration) == len(held_out) and not set(calibration) & set(held_out)
        True
    """
    try:
        files = catalog_files(directory)
    except FileNotFoundError:
        return [], []
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
    rng = random.Random(0)
    chosen = []
    for pool in (short, long):
        keys = sorted(pool)
        chosen += [(k, pool[k]) for k in rng.sample(keys, min(pairs, len(keys)))]
    rng.shuffle(chosen)
    calibration = [s for pair in chosen[0::2] for s in pair]
    held_out = [s for pair in chosen[1::2] for s in pair if s not in calibration]
    return calibration, held_out
