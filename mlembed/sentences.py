"""Documents to sentences: where each sentence of a text starts and ends, in any language.

Built on two splitters whose rules or models install with them, measured by ``benchmarks/split_quality.py`` on
NTREX-128 articles joined back into paragraphs (28 languages, 14 scripts, boundary F1):

* ``blingfire`` (Microsoft; one model for every language) cuts most text: it was the most accurate of three
  candidates almost everywhere (German 90.5, Arabic 92.9, Korean 87.5), but knows no danda, Ethiopic, Myanmar
  or Tibetan full stop (Hindi 4.9, Bengali 5.1, Amharic 6.9);
* ``sentencex`` (Wikimedia; per-language terminators and abbreviations) cuts text holding one of those
  terminators (Hindi 81.4, Bengali 83.9, Amharic 50.7).

Two corrections follow either's cuts: a straight quote after a space opens the next sentence, it does not
close this one (``told reporters. "I``); and in languages that write ordinals with a dot (German
``am 30. September``, Czech, Finnish, Turkish...), a cut after a number of one or two digits followed by a word
is undone. Together, macro F1 86.1 against sentencex's 80.5 and blingfire's 78.8 alone (see the benchmark's
``mlembed`` row). No splitter cuts Thai, which marks sentences with spaces it also uses inside them (F1 3-5).

Spans keep provenance: the sentences are slices of the text, so ``text[start:end]`` gives each one back, and
nothing in the text is dropped or changed (the whitespace between sentences stays outside the spans).
"""

from __future__ import annotations

import re

from mlembed.languages import normalize_lang

#: which splitter cuts: blingfire (one model for every language), except on text holding a sentence terminator
#: its model does not know (Devanagari and Bengali danda, Ethiopic, Myanmar, Tibetan), which sentencex cuts
ENGINE = "blingfire+sentencex"
_UNKNOWN_TO_BLINGFIRE = re.compile("[\u0964\u0965\u1362\u1367\u1368\u104b\u0f0d]")


def sentence_spans(text: str, lang: str | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, in order, surrounding whitespace excluded.

    Args:
        lang: the text's language, any tag :func:`mlembed.languages.normalize_lang` reads (``de``, ``deu``,
            ``zh-Hans``); None identifies it (:func:`mlembed.langid.identify`).

    Example:
        >>> text = "Das ist Dr. Müller. Er wohnt in Berlin! Wirklich?"
        >>> [text[a:b] for a, b in sentence_spans(text, "de")]
        ['Das ist Dr. Müller.', 'Er wohnt in Berlin!', 'Wirklich?']
    """
    if lang is None:
        from mlembed.langid import identify

        lang = identify(text) if text.strip() else "en"
    code = normalize_lang(lang).split("-")[0]
    if ENGINE == "blingfire+sentencex" and not _UNKNOWN_TO_BLINGFIRE.search(text):
        import blingfire

        spans = []
        for start, end in blingfire.text_to_sentences_and_offsets(text)[1] if text.strip() else []:
            piece = text[start:end]
            start, end = start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())
            if end > start:
                spans.append((start, end))
        return _corrected(text, spans, code)
    from sentencex import segment

    spans, pos = [], 0
    for piece in segment(code, text):
        start = pos + (len(piece) - len(piece.lstrip()))
        end = pos + len(piece.rstrip())
        if end > start:
            spans.append((start, end))
        pos += len(piece)
    if pos != len(text):  # the splitter must cover the text exactly; never lose a character silently
        raise RuntimeError(f"sentence splitter covered {pos} of {len(text)} characters")
    return _corrected(text, spans, code)


#: languages that write ordinal numbers with a dot ("am 3. Oktober"), where "3." ends no sentence
ORDINAL_DOT = frozenset("de da nb nn no fi hu cs sk sl hr sr bs is et lv pl tr fo".split())
_ORDINAL = re.compile(r"(?<![\d.])\d{1,2}\.$")
_QUOTES = "\"'"


def _corrected(text: str, spans: list[tuple[int, int]], code: str) -> list[tuple[int, int]]:
    """The splitter's spans with a space-preceded trailing quote moved to the next sentence, and (in
    :data:`ORDINAL_DOT` languages) cuts after a one- or two-digit ordinal undone."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out:
            prev_start, prev_end = out[-1]
            if code in ORDINAL_DOT and _ORDINAL.search(text[prev_start:prev_end]) and text[start].isalpha():
                out[-1] = (prev_start, end)
                continue
        out.append((start, end))
    for i in range(len(out) - 1):
        start, end = out[i]
        if end - start > 2 and text[end - 1] in _QUOTES and text[end - 2].isspace():
            out[i] = (start, len(text[: end - 1].rstrip()) if text[: end - 1].rstrip() else end)
            out[i + 1] = (end - 1, out[i + 1][1])
    return out


def split_sentences(text: str, lang: str | None = None) -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_spans`).

    Example:
        >>> split_sentences("我喜欢猫。你呢？", "zh")
        ['我喜欢猫。', '你呢？']
    """
    return [text[a:b] for a, b in sentence_spans(text, lang)]
