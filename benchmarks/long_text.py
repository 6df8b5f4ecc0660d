"""Long inputs: what each window and the long-input policy give on paragraphs and long texts.

Texts are built from NTREX-128 documents (``DOCUMENT_IDS.tsv``), the same spans in every language:

- *paragraphs*: each document cut into consecutive runs of 3-12 sentences (seeded), a sample of those whose
  English side holds 60-400 student tokens;
- *long texts*: whole documents, joined with the next ones until the English side holds >= 600 student tokens.

Two tasks per language and length, for each model and setting:

- *retrieval*: the text in language xx finds its English text among all English texts (accuracy, %);
- *passage search*: one sentence of a text, in xx, as the query; the English texts (or documents) as the
  collection: is the text that contains it ranked first (accuracy, %). Queries are encoded once per model,
  whole (they are single sentences); only the collection's encoding changes with the setting.

Settings: the model's window cut to 64 / 128 / 256 / 512 tokens with ``overflow="truncate"``; ``split`` at
128 (the default of :func:`mlembed.encode`), 256 and 512 (a text longer than that read whole in windows of
that size, their vectors pooled); and ``passages`` (what ``mlembed index build`` does by default: a long text stored as overlapping
windows, a text's score the best of its passages). Encode seconds are those of the collection and the xx
texts of each setting.

    python benchmarks/long_text.py --student mlembed-student
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared, write_results  # noqa: E402

LANGS = ["deu", "fra", "spa", "rus", "zho-CN", "jpn", "arb", "hin"]


def read_ntrex(root: Path, lang: str) -> list[str]:
    name = "newstest2019-src.eng.txt" if lang == "eng" else f"newstest2019-ref.{lang}.txt"
    return (root / "ntrex128" / name).read_text(encoding="utf-8").splitlines()


def documents(root: Path) -> list[range]:
    """Line ranges of the NTREX documents, in order."""
    ids = (root / "ntrex128" / "DOCUMENT_IDS.tsv").read_text().splitlines()
    out, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            out.append(range(start, i))
            start = i
    return out


def paragraph_spans(docs: list[range], count: int, rng: random.Random, fits) -> list[range]:
    """Each document cut into consecutive runs of 3-12 sentences; a sample of those ``fits`` accepts."""
    spans = []
    for doc in docs:
        start = doc.start
        while doc.stop - start >= 3:
            size = min(rng.randint(3, 12), doc.stop - start)
            spans.append(range(start, start + size))
            start += size
    rng.shuffle(spans)
    return sorted([s for s in spans if fits(s)][:count], key=lambda r: r.start)


def long_spans(docs: list[range], english: list[str], count_tokens, lo: int, hi: int, count: int) -> list[range]:
    """Consecutive whole documents joined until the English side holds >= lo tokens (at most hi)."""
    spans, start, stop = [], None, None
    for doc in docs:
        start = doc.start if start is None else start
        stop = doc.stop
        tokens = count_tokens(" ".join(english[start:stop]))
        if tokens >= lo:
            if tokens <= hi:
                spans.append(range(start, stop))
            start = None
    return spans[:count]


def join(lines: list[str], span: range, lang: str) -> str:
    sep = "" if lang in ("zho-CN", "jpn") else " "
    return sep.join(lines[i] for i in span)


def top1(queries: np.ndarray, collection: np.ndarray, owner: np.ndarray | None, n_texts: int) -> np.ndarray:
    """Index of the best text for each query (a text's score is the best of its rows when ``owner`` is given)."""
    scores = queries @ collection.T
    if owner is not None:
        best = np.full((len(queries), n_texts), -np.inf, dtype=np.float32)
        for row, text in enumerate(owner):
            best[:, text] = np.maximum(best[:, text], scores[:, row])
        scores = best
    return scores.argmax(1)


def passages(model, texts: list[str], overlap: int) -> tuple[list[str], np.ndarray]:
    """The rows ``index build`` stores for these texts (mlembed.windows.passage_spans) and the text of each."""
    from mlembed.windows import passage_spans

    rows, owner = [], []
    for i, (text, spans) in enumerate(zip(texts, passage_spans(model, texts, overlap))):
        rows += [text[a:b] for a, b, _ in spans]
        owner += [i] * len(spans)
    return rows, np.asarray(owner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="mlembed-student", help="the main job's student folder")
    ap.add_argument("--models", default="student,e5-small,minilm-en")
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--paragraphs", type=int, default=100, help="paragraphs per language")
    ap.add_argument("--long-texts", type=int, default=40, help="long texts per language (at most)")
    ap.add_argument("--queries", type=int, default=200, help="passage-search queries per language and length")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default="long_text")
    args = ap.parse_args()

    from mlembed.encoding import encode
    from mlembed.models import load_model
    from mlembed.windows import SPLIT_WINDOW, LengthReport, token_counts

    root = require_shared()
    langs = args.langs.split(",")
    rng = random.Random(args.seed)
    docs = documents(root)
    english = read_ntrex(root, "eng")
    lines = {lang: read_ntrex(root, lang) for lang in langs}
    student = load_model(args.student)
    student.max_seq_length = 512

    def count(text: str) -> int:
        return int(token_counts(student, [text])[0])

    spans = {
        "paragraphs": paragraph_spans(
            docs, args.paragraphs, rng, lambda s: 60 <= count(" ".join(english[i] for i in s)) <= 400
        ),
        "long texts": long_spans(docs, english, count, 600, 2000, args.long_texts),
    }
    lines["eng"] = english
    texts = {
        length: {lang: [join(lines[lang], s, lang) for s in spans[length]] for lang in ["eng", *langs]}
        for length in spans
    }
    # passage-search queries: (language, sentence, the text that holds it), sampled per language and length
    queries: dict[str, dict[str, tuple[list[str], np.ndarray]]] = defaultdict(dict)
    for length, ranges in spans.items():
        holder = [(t, i) for t, r in enumerate(ranges) for i in r]
        for lang in langs:
            picked = random.Random(f"{args.seed}{length}{lang}").sample(holder, min(args.queries, len(holder)))
            queries[length][lang] = ([lines[lang][i] for _, i in picked], np.array([t for t, _ in picked]))
    sizes = {
        length: {
            lang: [int(x) for x in np.percentile(token_counts(student, texts[length][lang]), [0, 50, 100])]
            for lang in ["eng", *langs]
        }
        for length in spans
    }
    print("student tokens (min, median, max):", sizes)

    rows = []
    for name in args.models.split(","):
        model = load_model(args.student if name == "student" else name)
        own = int(model.max_seq_length)
        settings = [(f"truncate {w}", w, "truncate") for w in (64, 128, 256, 512) if w <= own]
        settings += [  # texts longer than w read whole in windows of w tokens, pooled; 128 is encode's default
            (f"split {w}" + (" (default)" if w == SPLIT_WINDOW else ""), w, "split")
            for w in (128, 256, 512)
            if w <= own
        ]
        settings += [(f"passages {own} (index)", own, "passages")]
        model.max_seq_length = own
        query_vecs = {
            length: {lang: encode(q, model, normalize=True) for lang, (q, _) in per.items()}
            for length, per in queries.items()
        }
        for label, window, mode in settings:
            model.max_seq_length = own if mode == "split" else window
            for length in spans:
                report = LengthReport(mode, window)
                t0 = time.perf_counter()
                if mode == "passages":
                    rows_en, owner = passages(model, texts[length]["eng"], window // 8)
                    report.windows = len(rows_en)
                    en = encode(rows_en, model, normalize=True)
                    quiet = LengthReport("split", window)
                    xx = {  # a text as a query is read whole (encode's default)
                        lang: encode(texts[length][lang], model, normalize=True, overflow="split", report=quiet)
                        for lang in langs
                    }
                else:
                    owner = None
                    opts = {"normalize": True, "overflow": mode, "report": report, "split_window": window}
                    en = encode(texts[length]["eng"], model, **opts)
                    xx = {lang: encode(texts[length][lang], model, **opts) for lang in langs}
                seconds = time.perf_counter() - t0
                n = len(texts[length]["eng"])
                retrieval = {
                    lang: float(100 * np.mean(top1(xx[lang], en, owner, n) == np.arange(n))) for lang in langs
                }
                search = {
                    lang: float(
                        100 * np.mean(top1(query_vecs[length][lang], en, owner, n) == queries[length][lang][1])
                    )
                    for lang in langs
                }
                row = {
                    "model": name,
                    "setting": label,
                    "window": window,
                    "mode": mode,
                    "length": length,
                    "retrieval": round(float(np.mean(list(retrieval.values()))), 2),
                    "passage_search": round(float(np.mean(list(search.values()))), 2),
                    "encode_seconds": round(seconds, 1),
                    "retrieval_by_lang": {k: round(v, 1) for k, v in retrieval.items()},
                    "passage_search_by_lang": {k: round(v, 1) for k, v in search.items()},
                    "over_window": report.over,
                    "pooled": report.pooled,
                    "windows": report.windows,
                }
                rows.append(row)
                print(
                    f"{name:10s} {label:22s} {length:10s} retrieval {row['retrieval']:5.1f} passage search "
                    f"{row['passage_search']:5.1f} {seconds:6.1f} s",
                    flush=True,
                )
        del model

    def pick(model: str, length: str, setting_prefix: str) -> dict:
        return next(
            r
            for r in rows
            if r["model"] == model and r["length"] == length and r["setting"].startswith(setting_prefix)
        )

    summary = {}
    if "student" in args.models.split(","):
        per_length = {}
        for length in spans:
            candidates = [
                r for r in rows if r["model"] == "student" and r["length"] == length and r["mode"] != "passages"
            ]
            best = max(candidates, key=lambda r: r["passage_search"])
            default = next(r for r in candidates if r["setting"].endswith("(default)"))
            cut64 = pick("student", length, "truncate 64")
            per_length[length] = {
                "default": default["passage_search"],
                "best": best["passage_search"],
                "best_setting": best["setting"],
                "truncate_64": cut64["passage_search"],
                "index_passages": pick("student", length, "passages")["passage_search"],
                "encode_seconds_ratio_default_vs_64": round(default["encode_seconds"] / cut64["encode_seconds"], 2),
            }
        summary = {
            "default_minus_best": round(min(v["default"] - v["best"] for v in per_length.values()), 2),
            "default_minus_64": round(min(v["default"] - v["truncate_64"] for v in per_length.values()), 2),
            "encode_seconds_ratio_paragraphs": per_length["paragraphs"]["encode_seconds_ratio_default_vs_64"],
            "by_length": per_length,
        }
    data = {
        "machine": machine(),
        "languages": langs,
        "texts": {length: len(spans[length]) for length in spans},
        "student_tokens_min_median_max": sizes,
        "queries_per_language": args.queries,
        "seed": args.seed,
        "summary": summary,
        "rows": rows,
    }
    md = [
        "# Long inputs: windows, split-and-pool and passages",
        "",
        f"NTREX-128, {len(langs)} languages ({', '.join(langs)}) -> English; {len(spans['paragraphs'])} paragraphs "
        f"(3-12 sentences) and {len(spans['long texts'])} long texts (whole documents joined, >= 600 English "
        f"student tokens) per language; up to {args.queries} passage-search queries per language and length. "
        f"CPU flags: {', '.join(data['machine']['cpu_flags'])}; {data['machine']['cpu_count']} cores.",
        "",
        "Student tokens of the texts (min / median / max): "
        + "; ".join(
            f"{length}: en {sizes[length]['eng'][0]}/{sizes[length]['eng'][1]}/{sizes[length]['eng'][2]}, "
            f"all languages {min(v[0] for v in sizes[length].values())}-{max(v[2] for v in sizes[length].values())}"
            for length in spans
        ),
        "",
        "| model | setting | length | retrieval xx->en | passage search | encode s | texts over the window |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['model']} | {r['setting']} | {r['length']} | {r['retrieval']:.1f} | {r['passage_search']:.1f} | "
            f"{r['encode_seconds']:.1f} | {r['over_window']} |"
        )
    if summary:
        md += [
            "",
            f"Student, default (`split` at {SPLIT_WINDOW}) minus the best one-vector setting, passage search, worse length: "
            f"**{summary['default_minus_best']:+.2f}**; minus the 64-token window: **{summary['default_minus_64']:+.2f}**; "
            f"encode seconds of the default / 64-token window on the paragraphs: "
            f"**{summary['encode_seconds_ratio_paragraphs']:.2f}x**.",
        ]
    write_results(args.results, data, "\n".join(md))


if __name__ == "__main__":
    main()
