"""``mlembed data``: read, clean and count parallel data from any spec; optionally write it as TSV."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="read/clean/count parallel data (tsv, pair, tatoeba, ntrex, gettext, jsonl, hf)",
        description="Stream parallel sentences from one or more specs (KIND:WHERE, e.g. gettext:system:de, "
        "tsv:pairs.tsv, pair:x.en,x.de, tatoeba:DIR:deu, ntrex:DIR:fra, jsonl:x.jsonl, hf:FOLDER), clean "
        "them, print counts per language pair and per cleaning reason; --output writes a TSV. "
        "See docs/data.md.",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="data spec(s); pairs are deduplicated across all")
    p.add_argument(
        "--langs", default=None, help="comma-separated target languages (de,fr or deu,fra; zh matches zh-Hans)"
    )
    p.add_argument("--on-bad-line", choices=["error", "skip"], default="error", help="bad rows/lines [%(default)s]")
    p.add_argument(
        "--output", "-o", default=None, help="FILE.tsv (one language pair) or a FOLDER (one SRC-TGT.tsv per pair)"
    )
    p.add_argument("--limit", type=int, default=None, help="stop after N kept pairs")
    g = p.add_argument_group("cleaning (see docs/data.md)")
    g.add_argument("--no-clean", action="store_true", help="no normalisation or filtering: raw pairs, counted")
    g.add_argument("--min-chars", type=int, default=1, help="minimum characters per side [%(default)s]")
    g.add_argument("--max-chars", type=int, default=1000, help="maximum characters per side [%(default)s]")
    g.add_argument("--min-words", type=int, default=1, help="minimum words on the English/source side [%(default)s]")
    g.add_argument(
        "--max-len-ratio", type=float, default=3.0, help="max length ratio (CJK-aware units), 0 = off [%(default)s]"
    )
    g.add_argument("--no-dedupe", action="store_true", help="keep exact duplicate pairs")
    g.add_argument(
        "--check-lang",
        action="store_true",
        help="drop pairs with a side not in its language by language identification (py3langid; counted as "
        "wrong_language; sides in languages it does not know are kept)",
    )
    g.add_argument(
        "--decontaminate",
        action="append",
        default=[],
        metavar="PATH",
        help="drop pairs with a side equal to a line of these evaluation files/folders (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import itertools
    import time

    from tqdm import tqdm

    from mlembed.data import read_pairs
    from mlembed.data.cleaning import CleanOptions, CleanStats
    from mlembed.data.output import write_tsv

    options = (
        None
        if args.no_clean
        else CleanOptions(
            min_chars=args.min_chars,
            max_chars=args.max_chars,
            min_words=args.min_words,
            max_len_ratio=args.max_len_ratio or None,
            dedupe=not args.no_dedupe,
            decontaminate=args.decontaminate,
            check_lang=args.check_lang,
        )
    )
    langs = [code for code in (args.langs or "").split(",") if code.strip()] or None
    stats = CleanStats()
    start = time.perf_counter()
    pairs = read_pairs(args.specs, langs=langs, on_bad_line=args.on_bad_line, clean=options, stats=stats)
    if args.limit is not None:
        pairs = itertools.islice(pairs, args.limit)
    pairs = tqdm(pairs, unit=" pairs", desc="data", mininterval=1.0, disable=None)
    if args.output:
        counts = write_tsv(pairs, args.output)
    else:
        for _ in pairs:
            pass
    seconds = time.perf_counter() - start
    print(stats.summary())
    kept = stats.totals["kept"]
    print(
        f"{kept} pairs kept of {stats.totals['read']} read in {seconds:.1f}s ({stats.totals['read'] / max(seconds, 1e-9):,.0f} pairs/s)"
    )
    if args.output:
        written = sum(counts.values())
        print(f"wrote {written} pairs to {args.output}" + (f" ({len(counts)} files)" if len(counts) > 1 else ""))
    return 0
