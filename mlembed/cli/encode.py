"""``mlembed encode``: sentences (file or stdin, one a line) -> ``.npy`` (+ optional ``.jsonl`` sidecar)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlembed.cli import add_backend_argument, add_overflow_argument, add_ray_argument

DEFAULT_TOKEN_BUDGET = 2048  # mlembed.encoding.DEFAULT_TOKEN_BUDGET, without importing numpy for --help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode",
        help="encode sentences (one a line) to a .npy file",
        description="Encode sentences in any language, one a line, from FILE or stdin, to a float32/float16 "
        ".npy matrix (rows in input order), written atomically; streamed in chunks so inputs larger than "
        "RAM work. Beside OUTPUT, OUTPUT's name with .json records the model, its window and what was done to "
        "inputs longer than it.",
    )
    p.add_argument(
        "input",
        nargs="*",
        default=["-"],
        help="text file, one sentence a line (default: stdin); with --ray: files or globs",
    )
    p.add_argument("-o", "--output", required=True, help="output .npy path (with --ray: a folder of shards)")
    p.add_argument(
        "--model", default="minilm-en", help="alias (minilm-en, e5-small, muse, e5q4), folder or hub id [%(default)s]"
    )
    add_backend_argument(p, "auto")
    p.add_argument(
        "--token-budget",
        type=int,
        default=DEFAULT_TOKEN_BUDGET,
        help="on CPU: padded tokens per forward pass, sentences sorted by length (0: fixed --batch-size) [%(default)s]",
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="sentences per forward pass with --token-budget 0 [%(default)s]"
    )
    p.add_argument("--normalize", action="store_true", help="L2-normalise the vectors (cosine = dot product)")
    p.add_argument(
        "--max-seq-length",
        type=int,
        default=None,
        help="the model's window in tokens, prompt and special tokens included [the model's own]",
    )
    add_overflow_argument(p, "split", "nothing given is left unread")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="[%(default)s]")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto: bf16 autocast only on CPUs with native bf16 instructions [%(default)s]",
    )
    p.add_argument("--sidecar", default=None, help="also write a .jsonl with {id, text} per row")
    p.add_argument("--on-bad-line", choices=["error", "skip"], default="error", help="invalid UTF-8 lines")
    p.add_argument("--chunk-size", type=int, default=8192, help="sentences encoded per streamed chunk")
    add_ray_argument(p, "encode")
    p.add_argument("--actors", type=int, default=None, help="--ray: encoders at once [one per cluster CPU]")
    p.add_argument(
        "--shard-size",
        type=int,
        default=50_000,
        help="--ray: lines per .npy shard, the unit of retry and resume [%(default)s]",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mlembed.backends import load_backend
    from mlembed.encoding import encode_to_npy, read_sentences, write_sidecar
    from mlembed.files import DataError
    from mlembed.models import load_model
    from mlembed.windows import InputTooLongError, LengthReport, model_window

    if args.ray:
        return _run_on_ray(args)
    if len(args.input) > 1:
        raise DataError(f"{len(args.input)} inputs: without --ray, encode takes one file (or stdin)")
    args.input = args.input[0]
    # a file is counted first (bad lines found before the model loads; the .npy is then written in one pass)
    count = None if args.input == "-" else sum(1 for _ in read_sentences(args.input, args.on_bad_line))
    model = load_backend(load_model(args.model), args.backend, args.precision)
    sentences = read_sentences(args.input, args.on_bad_line)
    if args.sidecar and args.input == "-":  # stdin can be read only once: keep the lines for the sidecar
        sentences = list(sentences)
    if args.max_seq_length is not None and hasattr(model, "max_seq_length"):
        model.max_seq_length = args.max_seq_length
    report = LengthReport(args.overflow, model_window(model))
    try:
        out = encode_to_npy(
            sentences,
            args.output,
            model,
            count=count,
            chunk_size=args.chunk_size,
            batch_size=args.batch_size,
            normalize=args.normalize,
            dtype=args.dtype,
            precision=args.precision,
            show_progress=True,
            token_budget=args.token_budget or None,
            overflow=args.overflow,
            report=report,
        )
    except InputTooLongError as exc:  # lines are inputs, counted from 1 (skipped bad lines aside)
        raise DataError(
            str(exc).replace(f"input {exc.index} ", "this line ", 1),
            "<stdin>" if args.input == "-" else args.input,
            exc.index + 1 if args.on_bad_line == "error" else None,
        ) from None
    report.log("lines")
    write_encode_metadata(out, model, args, report)
    if args.sidecar:
        write_sidecar(
            sentences if isinstance(sentences, list) else read_sentences(args.input, args.on_bad_line), args.sidecar
        )
    emb = np.load(out, mmap_mode="r")
    print(
        f"wrote {out}: {emb.shape[0]} x {emb.shape[1]} {emb.dtype}" + (f" (+ {args.sidecar})" if args.sidecar else "")
    )
    return 0


def write_encode_metadata(out: Path, model: object, args: argparse.Namespace, report: object) -> Path:
    """``OUTPUT.json`` beside the ``.npy``: the model, its window, and the long-input report."""
    import json

    from mlembed.files import atomic_open
    from mlembed.models import model_info

    meta = {
        "model": args.model,
        **{k: v for k, v in model_info(model).items() if k != "source"},
        "normalize": args.normalize,
        "dtype": args.dtype,
        "input": args.input,
        "overflow": report.to_dict(),  # type: ignore[attr-defined]
    }
    path = out.with_suffix(".json")
    with atomic_open(path) as fh:
        json.dump(meta, fh, indent=1)
    return path


def _run_on_ray(args: argparse.Namespace) -> int:
    from mlembed.cluster.encode import encode_ray
    from mlembed.data.base import expand_paths
    from mlembed.files import DataError

    if args.max_seq_length:
        raise DataError("--max-seq-length is not passed to --ray workers: they read the model's own window")
    if args.input == ["-"] or args.sidecar:
        raise DataError("--ray encodes files (not stdin) into a folder of shards, without --sidecar")
    files = [f for pattern in args.input for f in expand_paths(pattern, ".txt")]
    manifest = encode_ray(
        files,
        args.output,
        args.model,
        backend=args.backend,
        address=args.ray if isinstance(args.ray, str) else None,
        actors=args.actors,
        shard_size=args.shard_size,
        normalize=args.normalize,
        dtype=args.dtype,
        precision=args.precision,
        token_budget=args.token_budget or None,
        on_bad_line=args.on_bad_line,
        overflow=args.overflow,
    )
    print(
        f"wrote {args.output}: {manifest['count']} x {manifest['dimension']} {args.dtype} in "
        f"{len(manifest['shards'])} shards (manifest.json) on backend {manifest['backend']}"
    )
    return 0
