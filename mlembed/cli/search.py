"""``mlembed search``: query a sentence index in any language, printing score and sentence."""

from __future__ import annotations

import argparse
import itertools

from mlembed.cli import add_overflow_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search a sentence index (cross-lingual)",
        description="Encode queries with the index's model and print the k most similar indexed sentences "
        "(score = cosine). Refuses a --model other than the one the index was built with. For an index that "
        "holds passages of long lines, each hit also gives its document (0-based input line) and character span: "
        "score<TAB>document<TAB>start:end<TAB>passage.",
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
    add_overflow_argument(p, "split", "a long query is read whole, as `mlembed encode` reads it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.data.base import batched
    from mlembed.encoding import read_sentences
    from mlembed.faiss_index import set_search_params
    from mlembed.files import DataError
    from mlembed.index import SentenceIndex
    from mlembed.windows import InputTooLongError, LengthReport

    queries = list(args.query)
    if not queries and not args.queries:
        raise DataError("give query sentences or --queries FILE")
    idx = SentenceIndex.load(args.index, model=args.model)
    set_search_params(idx.index, nprobe=args.nprobe, ef_search=args.ef_search)
    stream = itertools.chain(queries, read_sentences(args.queries) if args.queries else [])
    passages = idx.meta.get("documents", idx.meta["count"]) != idx.meta["count"]
    report = LengthReport(args.overflow, None)
    for first, batch in enumerate(batched(stream, 256)):
        try:
            results = idx.search(batch, k=args.k, overflow=args.overflow, report=report)
        except InputTooLongError as exc:
            raise DataError(
                str(exc).replace(f"input {exc.index} ", f"query {first * 256 + exc.index + 1} ", 1)
            ) from None
        for query, hits in zip(batch, results):
            print(f"# {query}")
            for hit in hits:
                where = f"{hit.document}\t{hit.span[0]}:{hit.span[1]}\t" if passages and hit.span else ""
                print(f"{hit.score:.4f}\t{where}{hit.sentence}")
    report.log("queries")
    return 0
