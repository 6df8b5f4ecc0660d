"""``mlembed index build``: a FAISS index of a text file's sentences, saved with its sentences and metadata."""

from __future__ import annotations

import argparse

from mlembed.cli import add_backend_argument, add_ray_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build FAISS indexes of sentences", description="Manage sentence indexes.")
    verbs = p.add_subparsers(dest="index_verb", metavar="SUBVERB", required=True)
    b = verbs.add_parser(
        "build",
        help="encode a text file and index it",
        description="Encode a text file (one sentence a line; streamed to a memory-mapped .npy) and build a FAISS "
        "index in folder OUTPUT with the sentences and a meta.json (model fingerprint, dimension, count, source hash). "
        "A line may be a whole document: one longer than the model's window is stored as passages.",
    )
    b.add_argument("--model", default="minilm-en", help="alias, folder or hub id [%(default)s]")
    add_backend_argument(b, "auto", "search")
    b.add_argument("--input", required=True, help="text file, one sentence a line")
    b.add_argument("--output", "-o", required=True, help="index folder")
    b.add_argument(
        "--type", default="auto", help="auto, flat, ivf, ivfsq, hnsw, ivfpq or a FAISS factory string [%(default)s]"
    )
    b.add_argument(
        "--embeddings",
        default=None,
        help="ready .npy of normalised embeddings aligned with the lines (with --ray also an `encode --ray` folder)",
    )
    b.add_argument("--train-size", type=int, default=None, help="vectors used to train IVF/PQ indexes")
    b.add_argument("--nprobe", type=int, default=None, help="IVF lists probed per query (saved in the index)")
    b.add_argument("--ef-search", type=int, default=None, help="HNSW efSearch (saved in the index)")
    b.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass [%(default)s]")
    add_ray_argument(b, "encode, then fill an IVF index in parts merged on disk,")
    b.add_argument("--lang", default=None, help="language of the sentences (e.g. de, zh-Hans), saved in meta.json")
    b.add_argument(
        "--overflow",
        choices=["passages", "error", "truncate", "split"],
        default="passages",
        help="a line longer than the model's window: passages = stored as overlapping windows, one row each "
        "with its line and character span (search answers with the passage and its document); split = one "
        "row, its windows' vectors pooled; truncate = its first window; error = refuse it [%(default)s]",
    )
    b.add_argument(
        "--passage-overlap",
        type=int,
        default=None,
        help="tokens shared by consecutive passages of a long line [an eighth of the window]",
    )
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.index import IndexSpec, SentenceIndex

    spec = IndexSpec(
        kind=args.type,
        train_size=args.train_size,
        nprobe=args.nprobe,
        ef_search=args.ef_search,
        lang=args.lang,
        overflow=args.overflow,
        passage_overlap=args.passage_overlap,
    )
    idx = SentenceIndex.build(
        args.input,
        args.output,
        args.model,
        spec,
        embeddings=args.embeddings,
        backend=args.backend,
        ray=args.ray,
        batch_size=args.batch_size,
    )
    m = idx.meta
    rows = (
        f"{m['count']} sentences"
        if m["documents"] == m["count"]
        else f"{m['count']} passages of {m['documents']} lines"
    )
    print(f"wrote {args.output}: {rows}, {m['factory']} index, dim {m['dimension']}, model {m['model']}")
    return 0
