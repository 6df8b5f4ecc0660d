"""``mlembed mine``: parallel sentence pairs from two text files by margin-scored k-NN (bounded memory, resumable)."""

from __future__ import annotations

import argparse

from mlembed.cli import add_backend_argument, add_overflow_argument, add_ray_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mine",
        help="mine parallel sentences from two monolingual files",
        description="Mine translation pairs between two text files (one sentence a line) with margin scoring "
        "(LASER mine_bitexts). Duplicates are dropped, embeddings stream to memmaps, the k-NN runs shard by "
        "shard within --memory-budget and can be resumed after a kill. Output: score<TAB>src<TAB>tgt, best first.",
    )
    p.add_argument("--src", default=None, help="source text file, one sentence a line")
    p.add_argument("--tgt", default=None, help="target text file, one sentence a line")
    p.add_argument(
        "--src-docs",
        default=None,
        help="instead of --src: source documents (JSONL of {id, text}, a folder of .txt, or a text file), split into "
        "sentences, sentences not in --src-lang set aside; output rows name each side's document and sentence",
    )
    p.add_argument("--tgt-docs", default=None, help="instead of --tgt: target documents (as --src-docs)")
    p.add_argument("--src-lang", default=None, help="with --src-docs: the source language [identified]")
    p.add_argument("--tgt-lang", default=None, help="with --tgt-docs: the target language [identified]")
    p.add_argument(
        "--no-align-documents",
        action="store_true",
        help="with --src-docs: keep the mined sentence pairs as they are, without aligning matched documents "
        "sentence by sentence (docs/mining.md)",
    )
    p.add_argument("--output", "-o", required=True, help="output TSV (written atomically)")
    p.add_argument("--model", default="minilm-en", help="alias, folder or hub id [%(default)s]")
    add_backend_argument(p, "auto", "mining")
    p.add_argument("--k", type=int, default=4, help="neighbourhood size of the margin [%(default)s]")
    p.add_argument("--margin", choices=["ratio", "distance", "absolute"], default="ratio", help="[%(default)s]")
    p.add_argument(
        "--mode", choices=["forward", "backward", "intersect", "max"], default="intersect", help="[%(default)s]"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="keep pairs scoring >= this (default: from --calibrate, else 1.06 ratio / 0.04 distance / 0.7 absolute)",
    )
    p.add_argument(
        "--calibrate",
        default=None,
        metavar="SPEC",
        help="parallel data (read_pairs spec, e.g. ntrex:DIR:deu) to choose the threshold on",
    )
    p.add_argument("--memory-budget", default="2G", help="working-set size of the k-NN, e.g. 1G [%(default)s]")
    p.add_argument(
        "--index", default="flat", help="flat (exact), ivf, ivfsq, hnsw, ivfpq or a FAISS factory string [%(default)s]"
    )
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists probed per query")
    p.add_argument(
        "--knn-precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="flat index: rank candidates by float32 products, or by int8 ones (exact integer sums, the same "
        "candidates on every CPU; slower here); either way the kept neighbours are rescored exactly [%(default)s]",
    )
    p.add_argument(
        "--centre",
        action="store_true",
        help="approximate index: find candidates with each side centred by its own mean, so a language's offset "
        "does not steer which inverted lists a query probes (docs/mining.md gives what it changes)",
    )
    p.add_argument(
        "--means",
        choices=["exact", "found", "calibrated"],
        default="exact",
        help="approximate index: the margin's neighbourhood means exact for the rows of every pair that can score "
        "--means-cut or more, from the neighbours found (both directions pooled), or calibrated on exact samples "
        "(docs/mining.md) [%(default)s]",
    )
    p.add_argument(
        "--means-cut",
        type=float,
        default=None,
        help="--means exact: pairs that can score this much get exact means (default: --threshold, at least the "
        "margin's default threshold; scores below it are upper bounds)",
    )
    p.add_argument("--workdir", default=None, help="shard results and embeddings [OUTPUT.work]")
    p.add_argument("--resume", action="store_true", help="continue a killed run from --workdir")
    p.add_argument("--shard-size", type=int, default=None, help="query rows per shard (default: from the budget)")
    p.add_argument(
        "--src-embeddings", default=None, help=".npy of normalised embeddings aligned with --src lines (skip encoding)"
    )
    p.add_argument("--tgt-embeddings", default=None, help=".npy of normalised embeddings aligned with --tgt lines")
    add_ray_argument(p, "encode and search (both directions)")
    add_overflow_argument(p, "truncate", "one over-long line must not abort a long run; each is counted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from mlembed.mine import MiningOptions, mine_files

    docs = args.src_docs is not None or args.tgt_docs is not None
    if docs and (args.src_docs is None or args.tgt_docs is None or args.src or args.tgt):
        raise SystemExit("mlembed mine: give --src-docs and --tgt-docs together, and without --src/--tgt")
    if not docs and (args.src is None or args.tgt is None):
        raise SystemExit("mlembed mine: give --src and --tgt (sentence files) or --src-docs and --tgt-docs")
    timings: dict[str, float] = {}
    reports: dict = {}
    options = MiningOptions(
        k=args.k,
        margin=args.margin,
        mode=args.mode,
        threshold=args.threshold,
        index=args.index,
        memory_budget=args.memory_budget,
        precision=args.knn_precision,
        centre=args.centre,
        means=args.means,
        means_cut=args.means_cut,
        nprobe=args.nprobe,
        shard_size=args.shard_size,
        workdir=args.workdir,
        resume=args.resume,
        ray=args.ray,
    )
    file_options = dict(
        model=args.model,
        options=options,
        backend=args.backend,
        calibrate=args.calibrate,
        src_embeddings=args.src_embeddings,
        tgt_embeddings=args.tgt_embeddings,
        overflow=args.overflow,
        timings=timings,
        reports=reports,
    )
    if docs:
        from mlembed.document_mining import mine_documents

        report = mine_documents(
            args.src_docs,
            args.tgt_docs,
            args.output,
            src_lang=args.src_lang,
            tgt_lang=args.tgt_lang,
            align_documents=not args.no_align_documents,
            **file_options,
        )
        print(report.summary())
        print(f"wrote {args.output}; seconds per stage: {json.dumps(report.timings)}")
        return 0
    n, threshold = mine_files(args.src, args.tgt, args.output, **file_options)
    print(f"wrote {args.output}: {n} pairs with {args.margin} margin >= {threshold:g} ({args.mode})")
    print(f"seconds per stage: {json.dumps(timings)}")
    for side, report in reports.items():
        if report.over:
            print(f"--{side}: {report.message('distinct lines')}")
    return 0
