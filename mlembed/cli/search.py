"""``mlembed search``: query a sentence index in any language, printing score and sentence."""

from __future__ import annotations

import argparse
import itertools


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search a sentence index (cross-lingual)",
        description="Encode queries with the index's model and print the k most similar indexed sentences "
        "(score = cosine). Refuses a --model other than the one the index was built with.",
    )
    p.add_argument("query", nargs="*", help="query sentences, any language")
    p.add_argument("--index", required=True, help="index folder from `mlembed index build`")
    p.add_argument(
        "--model", default=None, help="model to encode queries (checked against the index; default: the index's)"
    )
    p.add_argument("--queries", default=None, help="file of queries, one a line")
    p.add_argument("-k", type=int, default=10, help="hits per query [%(default)s]")
    p.add_argument("--nprobe", type=int, default=None, help="override the index's IVF nprobe")
    p.add_argument("--ef-search", type=int, default=None, help="override the index's HNSW efSearch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.data.base import batched
    from mlembed.encoding import read_sentences
    from mlembed.faiss_index import set_search_params
    from mlembed.files import DataError
    from mlembed.index import SentenceIndex

    queries = list(args.query)
    if not queries and not args.queries:
        raise DataError("give query sentences or --queries FILE")
    idx = SentenceIndex.load(args.index, model=args.model)
    set_search_params(idx.index, nprobe=args.nprobe, ef_search=args.ef_search)
    stream = itertools.chain(queries, read_sentences(args.queries) if args.queries else [])
    for batch in batched(stream, 256):
        for query, hits in zip(batch, idx.search(batch, k=args.k)):
            print(f"# {query}")
            for hit in hits:
                print(f"{hit.score:.4f}\t{hit.sentence}")
    return 0
