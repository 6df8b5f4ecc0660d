"""``mlembed filter``: score every pair of a parallel corpus and drop the ones that are not translations."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from mlembed.filtering import FilterThresholds

    d = FilterThresholds()
    p = sub.add_parser(
        "filter",
        help="score and clean a parallel corpus (meaning, language, length, copies, duplicates)",
        description="Score each pair of a TSV (source<TAB>target, one language pair a file): cosine and margin "
        "against the corpus itself (as `mine` scores), each side's language, the length ratio against the corpus's "
        "own, untranslated copies and near-duplicates. Writes every pair with its scores and, when dropped, its "
        "reason; --kept writes the kept pairs. Bounded memory (--block-size), resumable (--resume). Thresholds "
        "are calibrated defaults (docs/filter.md).",
    )
    p.add_argument("input", help="TSV of pairs, source<TAB>target (a header line eng<TAB>deu is read as languages)")
    p.add_argument("--output", "-o", required=True, help="scores TSV: every pair, its scores and reason (atomic)")
    p.add_argument("--kept", default=None, help="also write the kept pairs here (source<TAB>target)")
    p.add_argument(
        "--src-lang", default=None, help="source language (default: header, file name x.en-de.tsv, else identified)"
    )
    p.add_argument("--tgt-lang", default=None, help="target language (as --src-lang)")
    p.add_argument("--model", default="e5-small", help="multilingual model: alias, folder or hub id [%(default)s]")
    p.add_argument(
        "--margin-threshold", type=float, default=d.margin, help="drop pairs with a lower ratio margin [%(default)s]"
    )
    p.add_argument(
        "--length-threshold",
        type=float,
        default=d.length,
        help="drop pairs whose log length ratio is further than this from the corpus median [%(default)s]",
    )
    p.add_argument(
        "--lang-top",
        type=int,
        default=d.lang_top,
        help="a side is in its language when it is among the detector's N most likely [%(default)s]",
    )
    p.add_argument(
        "--lang-min-units",
        type=int,
        default=d.lang_min_units,
        help="judge the language of sides of at least this length (CJK characters count 3) [%(default)s]",
    )
    p.add_argument(
        "--keep-fraction",
        type=float,
        default=None,
        help="instead of --margin-threshold: keep this share of all pairs, best margins first",
    )
    p.add_argument(
        "--drop",
        default=None,
        metavar="REASONS",
        help="comma-separated reasons that drop a pair (default: all of no_text, copy, duplicate, wrong_language, "
        "length, low_margin); a pair that only other reasons flag is kept and marked kept:REASON. For distillation "
        "data, --drop no_text,length,low_margin keeps copies, duplicates and other-language sides (docs/filter.md)",
    )
    p.add_argument("--k", type=int, default=4, help="margin neighbourhood size [%(default)s]")
    p.add_argument(
        "--block-size", type=int, default=100_000, help="pairs scored together; bounds memory [%(default)s]"
    )
    p.add_argument("--memory-budget", default="1G", help="each block's k-NN working set [%(default)s]")
    p.add_argument("--workdir", default=None, help="scored blocks, for --resume [OUTPUT.work]")
    p.add_argument("--resume", action="store_true", help="continue a killed run from --workdir")
    p.add_argument(
        "--on-bad-line",
        choices=["error", "skip"],
        default="error",
        help="a line that is not two fields or not UTF-8: stop with its file and line, or list it as malformed "
        "[%(default)s]",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.filtering import FilterThresholds, filter_file

    thresholds = FilterThresholds(
        margin=args.margin_threshold,
        length=args.length_threshold,
        lang_top=args.lang_top,
        lang_min_units=args.lang_min_units,
    )
    report = filter_file(
        args.input,
        args.output,
        kept=args.kept,
        src_lang=args.src_lang,
        tgt_lang=args.tgt_lang,
        model=args.model,
        thresholds=thresholds,
        keep_fraction=args.keep_fraction,
        k=args.k,
        block_size=args.block_size,
        memory_budget=args.memory_budget,
        workdir=args.workdir,
        resume=args.resume,
        on_bad_line=args.on_bad_line,
        **({"drop": [r.strip() for r in args.drop.split(",") if r.strip()]} if args.drop else {}),
    )
    src, tgt = report.languages
    print(f"{args.input} ({src}-{tgt}): {report.summary()}")
    if args.keep_fraction is not None:
        print(f"margin cut for --keep-fraction {args.keep_fraction}: {report.margin_cut:.4f}")
    print(f"wrote {args.output}" + (f" and {args.kept}" if args.kept else ""))
    return 0
