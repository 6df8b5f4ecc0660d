"""Language identification: which language a line is in, for cleaning, mining and filtering.

Built on ``py3langid`` (langid.py's naive Bayes model on NumPy: 140 languages, its model installs with it,
nothing is fetched). ``benchmarks/langid_quality.py`` chose it. On the languages both candidates cover, it was as
accurate as ``lingua-language-detector`` on short Tatoeba sentences (96.7 % vs 96.7 %). It was slightly more
accurate on NTREX news sentences (97.8 % vs 97.2 %), covered 95 NTREX languages against 69, and ran 18x faster
(15,463 vs 854 sentences/s).

A line is taken to be *in* a language when that language is among the detector's ``top`` most likely (3 by
default). A closely related language (Bosnian for Croatian, Malay for Indonesian) then does not condemn a
line, while an English line on a German side does. Some lines cannot be judged, and :func:`in_language`
returns None for them: lines shorter than ``MIN_UNITS`` (15 :func:`mlembed.languages.length_units`: a CJK ideograph counts 3, kana
and Hangul 2), and lines
in a language the detector does not know. ``benchmarks/langid_quality.py`` measures what the minimum costs
and saves on tatoeba-challenge pairs.
"""

from __future__ import annotations

import functools
from typing import Any

from mlembed.languages import length_units, normalize_lang

#: a line is in its expected language when that language is among this many most likely ones
TOP = 3
#: lines shorter than this (:func:`mlembed.languages.length_units`) are too short to judge
MIN_UNITS = 15


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE)


def _primary(tag: str) -> str:
    return normalize_lang(tag).split("-")[0]


@functools.lru_cache(maxsize=1)
def supported_languages() -> frozenset[str]:
    """The languages the detector knows, as primary language subtags (``de``, ``zh``, ...).

    Example:
        >>> {"de", "zh", "ar"} <= supported_languages()
        True
    """
    return frozenset(_primary(code) for code in _identifier().nb_classes)


def identify(text: str) -> str:
    """The most likely language of ``text`` (a primary language subtag).

    Example:
        >>> identify("Der Hund schläft im Garten."), identify("Где находится вокзал?")
        ('de', 'ru')
    """
    return _primary(_identifier().classify(text)[0])


def in_language(text: str, expected: str, top: int = TOP, min_units: int = MIN_UNITS) -> bool | None:
    """Whether ``text`` is in ``expected`` (any tag :func:`mlembed.languages.normalize_lang` reads: ``deu``,
    ``de``, ``zh-Hans``): the language is among the ``top`` most likely. None when the detector does not know it
    or the line is too short to judge.

    Example:
        >>> in_language("Der Hund schläft im Garten.", "deu"), in_language("The dog sleeps in the garden.", "de")
        (True, False)
        >>> in_language("Dummkopf!", "de") is None
        True
    """
    if length_units(text.strip()) < min_units:
        return None
    rank = language_rank(text, expected)[1]
    return None if rank is None else rank <= top


def language_rank(text: str, expected: str) -> tuple[str, int | None]:
    """The most likely language of ``text`` and the rank of ``expected`` among the detector's languages (1: the
    most likely; None when the detector does not know ``expected``): one detection gives both, for scoring a pair.

    Example:
        >>> language_rank("The dog sleeps in the garden.", "de")[0], language_rank("Der Hund schläft.", "deu")[1]
        ('en', 1)
    """
    wanted = _primary(expected)
    ranked = [_primary(code) for code, _ in _identifier().rank(text)]
    if wanted not in supported_languages():
        return ranked[0], None
    seen: list[str] = []  # variants of one language (zh-Hans, zh-Hant) take one rank
    for code in ranked:
        if code not in seen:
            seen.append(code)
        if code == wanted:
            return ranked[0], len(seen)
    return ranked[0], None
