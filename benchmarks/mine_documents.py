"""Mining from documents (`mlembed mine --src-docs --tgt-docs`) against today's `mine` on the same text split and
cleaned by hand, on a web-like corpus built from NTREX-128 documents.

Per language X (English-X): NTREX's 123 documents; a third of them on both sides, a third only on the English
side, a third only on the X side (so half of each side's documents have no counterpart); documents shuffled; each
document's headline (its first line) on a line of its own and its other lines joined into paragraphs of 1-4
lines; mixed in: boilerplate lines (the same English ones on both
sides: "Share this article", ...), a paragraph in a third language in a fifth of the documents, and on the X side,
English paragraphs taken from the English-only documents (untranslated text that *is* on the other side).
Gold: the NTREX line pairs of the shared documents. Hand-cleaned: each side's NTREX lines of its documents, one a
line, nothing else (today's `mine` input). Both mine with e5-small and one threshold, calibrated on NTREX Dutch (not
a benchmark language). Pair F1: a mined pair is right when it equals a gold pair (whitespace folded).

    python benchmarks/mine_documents.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import machine, require_shared, write_results

LANGS = {"deu": "de", "fra": "fr", "rus": "ru", "zho-CN": "zh", "arb": "ar", "hin": "hi", "jpn": "ja", "spa": "es"}
BOILERPLATE = [
    "Share this article",
    "Read more:",
    "Advertisement",
    "All rights reserved.",
    "Subscribe to our newsletter",
    "Image copyright Getty Images",
    "Follow us on Twitter",
    "Related Topics",
]
THIRD = ["tur", "ita", "pol", "vie"]  # languages mixed in as foreign paragraphs


def _lines(shared: Path, code: str) -> list[str]:
    name = "newstest2019-src.eng.txt" if code == "eng" else f"newstest2019-ref.{code}.txt"
    return (shared / "ntrex128" / name).read_text(encoding="utf-8").splitlines()


def _norm(text: str) -> str:
    return " ".join(text.split())


def build(shared: Path, code: str, out: Path, seed: int) -> dict:
    """The documents of both sides (JSONL), the hand-cleaned sentence files and the gold pairs."""
    rng = random.Random(seed)
    doc_ids = (shared / "ntrex128" / "DOCUMENT_IDS.tsv").read_text().split()
    en, xx = _lines(shared, "eng"), _lines(shared, code)
    third = {c: _lines(shared, c) for c in THIRD}
    by_doc = defaultdict(list)
    for i, d in enumerate(doc_ids):
        by_doc[d].append(i)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    n = len(docs) // 3
    shared_docs, en_only, xx_only = docs[:n], docs[n : 2 * n], docs[2 * n :]
    joiner = "" if code in ("zho-CN", "jpn") else " "

    def paragraphs(lines: list[str], sep: str) -> list[str]:
        out, i = [], 0
        while i < len(lines):
            size = rng.randint(1, 4)
            out.append(sep.join(lines[i : i + size]))
            i += size
        return out

    def document(d: str, side: list[str], sep: str, english_pool: list[str] | None) -> str:
        lines = [side[i] for i in by_doc[d]]
        paras = [lines[0], *paragraphs(lines[1:], sep)]  # the headline on its own line, as a page shows it
        if rng.random() < 0.2:  # a paragraph in a third language
            other = third[rng.choice(THIRD)]
            paras.insert(rng.randrange(len(paras) + 1), other[rng.randrange(len(other))])
        if english_pool and rng.random() < 0.3:  # untranslated English that the English side has too
            paras.insert(rng.randrange(len(paras) + 1), rng.choice(english_pool))
        head = rng.sample(BOILERPLATE, 2)
        return "\n".join([head[0], *paras, head[1]])

    english_pool = [en[i] for d in en_only for i in by_doc[d]]
    sides = {
        "en": [(d, document(d, en, " ", None)) for d in shared_docs + en_only],
        "xx": [(d, document(d, xx, joiner, english_pool)) for d in shared_docs + xx_only],
    }
    out.mkdir(parents=True, exist_ok=True)
    for side, items in sides.items():
        rng.shuffle(items)
        with open(out / f"{side}.jsonl", "w", encoding="utf-8") as fh:
            for d, text in items:
                fh.write(json.dumps({"id": f"{side}-{d}", "text": text}, ensure_ascii=False) + "\n")
    hand = {
        "en": [en[i] for d in shared_docs + en_only for i in by_doc[d]],
        "xx": [xx[i] for d in shared_docs + xx_only for i in by_doc[d]],
    }
    for side, lines in hand.items():
        (out / f"{side}.hand.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    gold = {(_norm(en[i]), _norm(xx[i])) for d in shared_docs for i in by_doc[d]}
    return {"gold": gold, "documents": {k: len(v) for k, v in sides.items()}, "gold_pairs": len(gold)}


def f1(pairs: list[tuple[float, str, str]], gold: set, threshold: float | None = None) -> dict:
    kept = [(a, b) for s, a, b in pairs if threshold is None or s >= threshold]
    tp = sum((_norm(a), _norm(b)) in gold for a, b in kept)
    p, r = tp / max(len(kept), 1), tp / max(len(gold), 1)
    return {"f1": round(100 * 2 * p * r / max(p + r, 1e-9), 2), "precision": round(100 * p, 2),
            "recall": round(100 * r, 2), "pairs": len(kept)}  # fmt: skip


def best_f1(pairs: list[tuple[float, str, str]], gold: set) -> dict:
    from mlembed.margin import f1_sweep

    if not pairs:
        return {"f1": 0.0}
    scores = np.array([s for s, _, _ in pairs])
    correct = np.array([(_norm(a), _norm(b)) in gold for _, a, b in pairs])
    t, _, _, f = f1_sweep(scores, correct, len(gold))
    i = int(np.argmax(f))
    return {"f1": round(100 * float(f[i]), 2), "threshold": round(float(t[i]), 4)}


def _read(path: Path, header: bool) -> list[tuple[float, str, str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()[int(header) :]]
    return [(float(r[0]), r[1], r[2]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shared = Path(os.path.relpath(require_shared()))
    info = machine()
    from mlembed.document_mining import mine_documents
    from mlembed.mine import MiningOptions, calibrate_from_spec, mine_files
    from mlembed.models import load_model

    model = load_model(args.model)
    threshold = calibrate_from_spec(f"ntrex:{shared}/ntrex128:nld", model, limit=2000).threshold
    work = Path(tempfile.mkdtemp(prefix="mlembed-minedocs-"))
    rows, seconds = {}, defaultdict(float)
    for code, lang in LANGS.items():
        built = build(shared, code, work / code, args.seed)
        d = work / code
        clock = time.time()
        mine_files(d / "en.hand.txt", d / "xx.hand.txt", d / "hand.tsv", model=model,
                   options=MiningOptions(threshold=-1e9), show_progress=False)  # fmt: skip
        seconds["hand"] += time.time() - clock
        clock = time.time()
        report = mine_documents(d / "en.jsonl", d / "xx.jsonl", d / "docs.tsv", src_lang="en", tgt_lang=lang,
                                model=model, options=MiningOptions(threshold=threshold), show_progress=False)  # fmt: skip
        seconds["documents"] += time.time() - clock
        clock = time.time()
        mine_documents(d / "en.jsonl", d / "xx.jsonl", d / "docs-unaligned.tsv", src_lang="en", tgt_lang=lang,
                       model=model, options=MiningOptions(threshold=threshold), show_progress=False,
                       align_documents=False)  # fmt: skip
        seconds["documents_unaligned"] += time.time() - clock
        hand, docs = _read(d / "hand.tsv", False), _read(d / "docs.tsv", True)
        unaligned = _read(d / "docs-unaligned.tsv", True)
        rows[lang] = {
            "gold_pairs": built["gold_pairs"],
            "documents": built["documents"],
            "hand": f1(hand, built["gold"], threshold),
            "documents_mined": f1(docs, built["gold"], threshold),
            "hand_best": best_f1(hand, built["gold"]),
            "documents_unaligned": f1(unaligned, built["gold"], threshold),
            "aligned_documents": report.aligned_documents,
            "sentences": report.sentences,
            "set_aside": dict(report.set_aside),
            "dropped": dict(report.dropped),
        }
        print(lang, json.dumps({k: rows[lang][k] for k in ("hand", "documents_mined")}), flush=True)
    mean = {
        key: round(float(np.mean([r[key]["f1"] for r in rows.values()])), 2)
        for key in ("hand", "documents_mined", "hand_best", "documents_unaligned")
    }
    summary = {
        "f1_hand_cleaned": mean["hand"],
        "f1_documents": mean["documents_mined"],
        "f1_delta": round(mean["documents_mined"] - mean["hand"], 2),
        "f1_documents_unaligned": mean["documents_unaligned"],
        "threshold": threshold,
        "within_2_points": mean["documents_mined"] >= mean["hand"] - 2,
    }
    md = [
        "# Mining from documents vs mining hand-cleaned sentences (one run)",
        "",
        f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, native bf16: {info['native_bf16']}. Model: "
        f"{args.model}; ratio margin, intersect; threshold {threshold:g} calibrated on NTREX Dutch. Web-like corpus "
        "from NTREX-128 documents (see the script's docstring). Seconds (all languages): hand-cleaned "
        f"{seconds['hand']:.0f}, documents {seconds['documents']:.0f}.",
        "",
        "| English-X | gold pairs | hand-cleaned F1 | documents F1 | documents P / R | hand best F1 | documents F1 "
        "without aligning documents | documents aligned | set aside (not in X) | dropped after mining |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for lang, r in rows.items():
        md.append(
            f"| {lang} | {r['gold_pairs']} | {r['hand']['f1']} | {r['documents_mined']['f1']} | "
            f"{r['documents_mined']['precision']} / {r['documents_mined']['recall']} | {r['hand_best']['f1']} | "
            f"{r['documents_unaligned']['f1']} | {r['aligned_documents']} | {sum(r['set_aside'].values())} | "
            f"{json.dumps(r['dropped'])} |"
        )
    md.append(
        f"| **mean** | | **{mean['hand']}** | **{mean['documents_mined']}** | | {mean['hand_best']} | "
        f"{mean['documents_unaligned']} | | | |"
    )
    data = {
        "benchmark": "mine_documents",
        "machine": info,
        "args": vars(args),
        "summary": summary,
        "mean_f1": mean,
        "rows": rows,
        "seconds": dict(seconds),
    }
    write_results("mine_documents", data, "\n".join(md))


if __name__ == "__main__":
    main()
