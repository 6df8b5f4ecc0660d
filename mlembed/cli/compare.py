"""``mlembed compare``: the same sentence in several languages, cosine to English, per model."""

from __future__ import annotations

import argparse

from mlembed.cli import add_backend_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="cosine table of one sentence in several languages",
        description="Encode the same sentence in several languages with one or more models and print the "
        "embeddings' shape and each translation's cosine similarity to the English sentence. With no "
        "--sentence, a built-in sentence in en, de, fr, es, ru and zh-Hans is used.",
    )
    p.add_argument("--model", action="append", default=None, help="model (repeatable) [minilm-en]")
    add_backend_argument(p, "torch")
    p.add_argument(
        "--sentence",
        action="append",
        default=None,
        metavar="LANG=TEXT",
        help="a sentence (repeatable); first is the reference",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlembed.backends import load_backend
    from mlembed.compare import DEFAULT_SENTENCES, similarity_table
    from mlembed.files import DataError
    from mlembed.models import load_model

    sentences = DEFAULT_SENTENCES
    if args.sentence:
        sentences = {}
        for item in args.sentence:
            lang, sep, text = item.partition("=")
            if not sep or not text.strip():
                raise DataError(f"expected LANG=TEXT, got {item!r}", "--sentence")
            sentences[lang.strip()] = text.strip()
    models = {name: load_backend(load_model(name), args.backend) for name in (args.model or ["minilm-en"])}
    print(similarity_table(models, sentences, control=not args.sentence))
    return 0
