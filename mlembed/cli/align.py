"""``mlembed align``: sentence alignment of documents that translate each other (beads in Vecalign's format)."""

from __future__ import annotations

import argparse
import logging

from mlembed.cli import add_backend_argument

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from mlembed.aligner import BAND, LENGTH_WEIGHT, MAX_BEAD, SKIP_QUANTILE

    p = sub.add_parser(
        "align",
        help="align the sentences of translated documents (1-1, 1-2, 2-1, ... and omissions)",
        description="Align two documents that translate each other, one sentence a line, in order: beads of up to "
        "--max-bead sentences and sentences left out. Output: one bead a line, '[0]:[0, 1]:cost' (Vecalign's and "
        "Bertalign's format, which their scorers read); --tsv adds the aligned text. --src and --tgt may be two "
        "directories (files matched by name) and --pairs a TSV of source<TAB>target paths; then --output is a "
        "directory, documents already aligned there are kept (a killed run resumes), and --overwrite redoes them.",
    )
    p.add_argument("--src", default=None, help="source document (one sentence a line) or directory")
    p.add_argument("--tgt", default=None, help="target document or directory")
    p.add_argument("--pairs", default=None, help="TSV of source<TAB>target paths (relative to the TSV)")
    p.add_argument("--output", "-o", required=True, help="beads file; a directory for several documents")
    p.add_argument("--tsv", default=None, help="also write source<TAB>target<TAB>cost (one document only)")
    p.add_argument("--model", default="e5-small", help="alias, folder or hub id [%(default)s]")
    add_backend_argument(p, "torch")
    p.add_argument("--max-bead", type=int, default=MAX_BEAD, help="most sentences in a bead, both sides [%(default)s]")
    p.add_argument(
        "--skip-quantile",
        type=float,
        default=SKIP_QUANTILE,
        help="leaving a sentence out costs this quantile of the 1-1 costs near the path [%(default)s]",
    )
    p.add_argument(
        "--length-weight", type=float, default=LENGTH_WEIGHT, help="weight of the length-ratio term [%(default)s]"
    )
    p.add_argument(
        "--band", type=int, default=BAND, help="target sentences searched each side of the anchors [%(default)s]"
    )
    p.add_argument(
        "--overlaps",
        choices=["mean", "encode"],
        default="mean",
        help="vectors of runs of sentences: their sentences' token-weighted mean, or each run encoded (slower) "
        "[%(default)s]",
    )
    p.add_argument(
        "--weights",
        choices=["uniform", "tokens"],
        default="uniform",
        help="with --overlaps mean: each sentence of a run weighs the same, or by its tokens [%(default)s]",
    )
    p.add_argument(
        "--split",
        action="store_true",
        help="inputs are paragraphs (one a line): split them into sentences first (mlembed.sentences); the beads "
        "index the sentences, written with their line and character span to OUTPUT.src.tsv / OUTPUT.tgt.tsv",
    )
    p.add_argument("--src-lang", default=None, help="with --split: the source language [identified]")
    p.add_argument("--tgt-lang", default=None, help="with --split: the target language [identified]")
    p.add_argument("--overwrite", action="store_true", help="redo documents already aligned in --output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm.auto import tqdm

    from mlembed.aligner import align_files, document_pairs
    from mlembed.backends import load_backend
    from mlembed.files import DataError
    from mlembed.models import load_model

    if args.pairs is not None:
        if args.src or args.tgt:
            raise DataError("give --pairs, or --src and --tgt, not both")
        pairs = document_pairs(args.pairs)
    elif args.src and args.tgt:
        pairs = document_pairs(args.src, args.tgt)
    else:
        raise DataError("give --src and --tgt (files or directories), or --pairs TSV")
    if args.max_bead < 2:
        raise DataError(f"--max-bead {args.max_bead}: expected at least 2 (a 1-1 bead)")
    if not 0 < args.skip_quantile < 1:
        raise DataError(f"--skip-quantile {args.skip_quantile}: expected a number between 0 and 1")
    if args.band < args.max_bead:
        raise DataError(f"--band {args.band}: expected at least --max-bead ({args.max_bead})")
    several = (
        args.pairs is not None or Path(pairs[0][0]).parent != Path(args.src or "").parent or Path(args.src).is_dir()
    )
    if several and args.tsv:
        raise DataError("--tsv is for one document pair; with several, the beads go to --output/NAME")
    if (args.src_lang or args.tgt_lang) and not args.split:
        raise DataError("--src-lang and --tgt-lang go with --split")
    langs = (args.src_lang, args.tgt_lang)
    model = load_backend(load_model(args.model), args.backend)
    options = {
        "max_bead": args.max_bead,
        "skip_quantile": args.skip_quantile,
        "length_weight": args.length_weight,
        "band_width": args.band,
        "overlaps": args.overlaps,
        "weights": args.weights,
    }
    if not several:
        src, tgt, _ = pairs[0]
        report = align_files(src, tgt, args.output, model, tsv=args.tsv, split=args.split, langs=langs, **options)
        print(_summary(report))
        return 0
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    done = skipped = 0
    for src, tgt, name in tqdm(pairs, desc="documents", unit="pair"):
        target = out / name
        if target.exists() and not args.overwrite:
            skipped += 1  # written atomically: an existing file is a finished document
            continue
        report = align_files(src, tgt, target, model, split=args.split, langs=langs, **options)
        logger.info(_summary(report))
        done += 1
    print(f"aligned {done} document pair(s) into {out}" + (f"; {skipped} already there, kept" if skipped else ""))
    return 0


def _summary(report) -> str:
    types = ", ".join(f"{k}: {v}" for k, v in sorted(report.types.items(), key=lambda kv: -kv[1]))
    return (
        f"{report.src_sentences} x {report.tgt_sentences} sentences -> {report.beads} beads ({types}) "
        f"in {report.seconds:.1f} s"
    )
