"""``mlembed serve``: an OpenAI-compatible embeddings endpoint, cross-lingual search and a web page."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from pathlib import Path

from mlembed.cli import add_backend_argument

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from mlembed.serve.inputs import DEFAULT_TOKEN_ENCODING, Limits

    d = Limits()
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP (OpenAI embeddings API, search, web page)",
        description="Serve MODEL over HTTP: the OpenAI embeddings API (POST /v1/embeddings, GET /v1/models), TEI's "
        "routes (POST /embed, GET /health, GET /info), Prometheus GET /metrics, POST /v1/search over the --index "
        "folders, POST /v1/compare, the API docs at /docs and a web page at /. Concurrent requests share forward "
        "passes (micro-batching). Binds to 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument("--model", default="minilm-en", help="alias, folder or hub id [%(default)s]")
    add_backend_argument(p, "torch")
    p.add_argument(
        "--index", action="append", default=[], metavar="[NAME=]DIR", help="index folder to search (repeatable)"
    )
    p.add_argument(
        "--name", default=None, help="model id clients send and /v1/models lists [the model folder's name, or --model]"
    )
    p.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="NAME",
        help="another model name to answer to, e.g. text-embedding-3-small for clients that insist on one (repeatable)",
    )
    p.add_argument(
        "--truncate",
        action="store_true",
        help="read inputs over the model's window up to it, reported in the response (default: answer 400, as "
        'OpenAI does; a request may send "truncate": true)',
    )
    p.add_argument(
        "--token-encoding",
        default=DEFAULT_TOKEN_ENCODING,
        metavar="NAME|FILE|none",
        help="tiktoken encoding that token-id inputs (LangChain's default) are decoded with: a name (read from "
        "tiktoken's cache, fetched once where online), a .tiktoken file, or none to refuse them [%(default)s]",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind [%(default)s]")
    p.add_argument("--port", type=int, default=8000, help="port [%(default)s]")
    p.add_argument(
        "--api-key",
        default=os.environ.get("MLEMBED_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1/* and /embed [env MLEMBED_API_KEY]",
    )
    p.add_argument(
        "--max-batch", type=int, default=d.max_batch, help="sentences gathered from concurrent requests [%(default)s]"
    )
    p.add_argument(
        "--token-budget",
        type=int,
        default=d.token_budget,
        help="padded tokens per model call; a batch is sorted by length and cut to fit [%(default)s]",
    )
    p.add_argument(
        "--batch-wait-ms", type=float, default=d.batch_wait_ms, help="wait for a part-full batch [%(default)s]"
    )
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="sentences waiting before 503 [%(default)s]")
    p.add_argument("--max-inputs", type=int, default=d.max_inputs, help="strings per request [%(default)s]")
    p.add_argument(
        "--max-input-chars", type=int, default=d.max_input_chars, help="characters per string [%(default)s]"
    )
    p.add_argument("--max-body", default="8M", help="request body size limit [%(default)s]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from mlembed.arrays import parse_size
    from mlembed.backends import load_backend
    from mlembed.files import DataError
    from mlembed.models import load_model
    from mlembed.serve.app import create_app
    from mlembed.serve.inputs import Limits
    from mlembed.serve.search import IndexSet

    for option in ("max_batch", "token_budget", "max_queue", "max_inputs", "max_input_chars"):
        if getattr(args, option) < 1:
            raise DataError(f"--{option.replace('_', '-')} {getattr(args, option)}: expected a positive number")
    if not 0 < args.port < 65536:
        raise DataError(f"--port {args.port}: expected 1 to 65535")
    if args.api_key is not None and not args.api_key.strip():
        raise DataError("--api-key is empty: give a key or leave the option out")
    limits = Limits(
        max_inputs=args.max_inputs,
        max_input_chars=args.max_input_chars,
        max_body_bytes=parse_size(args.max_body),
        max_batch=args.max_batch,
        token_budget=args.token_budget,
        max_queue=args.max_queue,
        batch_wait_ms=args.batch_wait_ms,
    )
    if not _is_loopback(args.host) and not args.api_key:
        logger.warning(f"serving on {args.host} with no --api-key: anyone who can reach this address can use it")
    model = load_backend(load_model(args.model), args.backend)
    indexes = IndexSet.load(args.index, model) if args.index else None
    name = args.name or served_name(args.model)
    encoding = None if args.token_encoding.lower() == "none" else args.token_encoding
    app = create_app(
        model,
        name,
        indexes,
        api_key=args.api_key,
        limits=limits,
        aliases=args.alias,
        truncate=args.truncate,
        token_encoding=encoding,
    )
    names = (
        ", ".join(f"{i['name']} ({i['lang'] or '?'}, {i['count']:,})" for i in indexes.describe())
        if indexes
        else "none"
    )
    also = f" (also answering to {', '.join(args.alias)})" if args.alias else ""
    logger.info(f"serving {name}{also} on http://{args.host}:{args.port}/ (indexes: {names})")
    # on SIGTERM/Ctrl-C, requests in flight get a few seconds to finish, then the server exits
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    return 0


def served_name(model: str) -> str:
    """The id a model is served under by default: a folder's name, else what it was loaded by (alias, hub id).

    Example:
        >>> served_name("minilm-en"), served_name("/tmp")
        ('minilm-en', 'tmp')
    """
    path = Path(model)
    return path.resolve().name if path.exists() else model


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
