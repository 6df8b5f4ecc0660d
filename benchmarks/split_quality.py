"""Sentence splitters, measured for turning users' documents into sentences (``mlembed.sentences``).

Candidates from well-kept libraries, whose rules or models install with them: ``sentencex`` (Wikimedia;
per-language abbreviations and terminators with fallbacks between languages), ``pysbd`` (Golden Rules; 23
languages, others read as English here) and ``blingfire`` (Microsoft; one language-agnostic model).

Gold: NTREX-128 is one sentence a line, and ``DOCUMENT_IDS.tsv`` names each line's article. Each article's
sentences are joined back into one paragraph: with a space, or with nothing in scripts that do not separate
sentences by spaces (Chinese, Japanese, Khmer, Burmese, Tibetan, Dzongkha; Thai and Lao put a space between
sentences). A splitter's output is
located in the paragraph, and each segment start after the first is a predicted boundary; **boundary F1** is
against the gold starts (exact character position, whitespace skipped). It is given per language and as the
macro mean over ``LANGUAGES`` (28 languages, 14 scripts); speed is characters per second over all of them.

Writes ``benchmarks/results/split_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import machine, require_shared, write_results

from mlembed.languages import normalize_lang

LANGUAGES = [
    "deu", "fra", "spa", "ita", "por", "nld", "pol", "ces", "fin", "hun", "tur", "vie", "ind",
    "rus", "ukr", "bul", "ell", "arb", "fas", "heb", "hin", "ben", "tam", "tha", "zho-CN", "jpn", "kor", "amh",
]  # fmt: skip
#: scripts whose sentences follow each other with no space (Thai and Lao put one between sentences)
NO_SPACES = {"zh", "ja", "km", "my", "bo", "dz"}


def paragraphs(shared: Path, code: str) -> list[tuple[str, list[int]]]:
    """(paragraph, gold start offsets of its sentences) per NTREX article."""
    root = shared / "ntrex128"
    ids = (root / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    lines = (root / f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()
    joiner = "" if normalize_lang(code).split("-")[0] in NO_SPACES else " "
    docs: dict[str, list[str]] = {}
    for doc, line in zip(ids, lines):
        if line.strip():
            docs.setdefault(doc, []).append(line.strip())
    out = []
    for sentences in docs.values():
        starts, pos = [], 0
        for s in sentences:
            starts.append(pos)
            pos += len(s) + len(joiner)
        out.append((joiner.join(sentences), starts))
    return out


def starts_of(text: str, segments: list[str]) -> list[int]:
    """Where each segment begins in ``text`` (segments located in order, whitespace skipped)."""
    out, cursor = [], 0
    for seg in segments:
        seg = seg.strip()
        if not seg:
            continue
        at = text.find(seg, cursor)
        if at < 0:  # a splitter that changed the text: locate its first characters
            at = text.find(seg[:20], cursor)
        if at < 0:
            continue
        out.append(at)
        cursor = at + len(seg)
    return out


def splitters() -> dict:
    import blingfire
    import pysbd
    from pysbd.languages import LANGUAGE_CODES
    from sentencex import segment

    pysbd_cache: dict = {}

    def with_pysbd(lang: str, text: str) -> list[str]:
        key = lang if lang in LANGUAGE_CODES else "en"
        if key not in pysbd_cache:
            pysbd_cache[key] = pysbd.Segmenter(language=key, clean=False)
        return pysbd_cache[key].segment(text)

    from mlembed.sentences import split_sentences

    return {
        "sentencex": lambda lang, text: list(segment(lang, text)),
        # what mlembed ships: blingfire, sentencex where blingfire knows no terminator, two corrections
        "mlembed": lambda lang, text: split_sentences(text, lang),
        "pysbd": with_pysbd,
        "blingfire": lambda lang, text: blingfire.text_to_sentences(text).split("\n"),
    }


def measure(name: str, split, shared: Path) -> dict:
    per, chars, seconds = {}, 0, 0.0
    for code in LANGUAGES:
        lang = normalize_lang(code).split("-")[0]
        tp = fp = fn = 0
        for text, gold in paragraphs(shared, code):
            t0 = time.perf_counter()
            segments = split(lang, text)
            seconds += time.perf_counter() - t0
            chars += len(text)
            predicted = set(starts_of(text, segments)[1:])
            truth = set(gold[1:])
            tp += len(predicted & truth)
            fp += len(predicted - truth)
            fn += len(truth - predicted)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per[code] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
        }
    out = {
        "splitter": name,
        "macro_f1": round(sum(v["f1"] for v in per.values()) / len(per), 4),
        "chars_per_s": round(chars / seconds),
        "languages": per,
    }
    print(name, out["macro_f1"], out["chars_per_s"], flush=True)
    return out


def render(data: dict) -> str:
    m = data["machine"]
    runs = data["results"]
    lines = [
        "# Sentence splitting: candidates for mlembed",
        "",
        "Produced by `benchmarks/split_quality.py` (its docstring gives the method), one run. "
        f"{m['cpu_count']} CPUs ({m['cpu_model']}). NTREX-128 articles joined back into paragraphs; boundary F1.",
        "",
        "| splitter | macro boundary F1 | characters/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['splitter']} | {100 * r['macro_f1']:.1f} | {r['chars_per_s']:,} |" for r in runs]
    lines += ["", "| language | " + " | ".join(r["splitter"] for r in runs) + " |", "|---|" + "---:|" * len(runs)]
    for code in LANGUAGES:
        lines.append(f"| {code} | " + " | ".join(f"{100 * r['languages'][code]['f1']:.1f}" for r in runs) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    shared = require_shared()
    results = [measure(name, split, shared) for name, split in splitters().items()]
    data = {"machine": machine(), "results": results}
    write_results("split_quality", data, render(data))


if __name__ == "__main__":
    main()
