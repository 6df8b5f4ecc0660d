"""The ``mlembed`` command line: a thin layer over the Python API, one module per verb.

Each verb module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
``run(args) -> int`` function.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import signal
import sys
import threading

from mlembed import __version__

VERBS = [
    "align",
    "compare",
    "data",
    "distill",
    "encode",
    "evaluate",
    "filter",
    "index",
    "info",
    "mine",
    "search",
    "serve",
]


#: mlembed.backends.BACKENDS, spelled out so that ``--help`` imports no engine (a test keeps them equal)
BACKENDS = ["torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "onnx-int8", "auto"]

#: what ``auto`` keeps, by the task a verb encodes for (mlembed.backends.probe)
AUTO_MEANS = {
    None: "the fastest that keeps mean cosine >= 0.999 to torch fp32 on this CPU",
    "mining": "the fastest that loses at most 0.5 point of mining F1 against torch fp32 on this CPU",
    "search": "the fastest that loses at most 0.5 point of top-1 retrieval accuracy against torch fp32 on this CPU",
}


def add_backend_argument(parser: argparse.ArgumentParser, default: str, task: str | None = None) -> None:
    """``--backend``, defaulting to ``$MLEMBED_BACKEND`` when set (tests pin ``torch``), else ``default``;
    ``task`` (``mining``, ``search``): what ``auto`` is judged by (else the vectors' cosine)."""
    import os

    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("MLEMBED_BACKEND", default),
        help=f"inference engine; auto: {AUTO_MEANS[task]}, measured once per model and cached (docs/backends.md) "
        "[%(default)s]",
    )


def add_overflow_argument(parser: argparse.ArgumentParser, default: str, why: str) -> None:
    """``--overflow error|truncate|split``: what happens to an input longer than the model's window
    (:mod:`mlembed.windows`); ``why`` says why this verb has its default."""
    parser.add_argument(
        "--overflow",
        choices=["error", "truncate", "split"],
        default=default,
        help="an input longer than the model's window (`mlembed info --model M` prints it): error = refuse it, "
        "naming its line and token count; truncate = read its first window; split = read it all, in windows "
        f"whose vectors are pooled; truncation and splitting are logged and counted in the output [{default}: "
        f"{why}]",
    )


def add_ray_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--ray [ADDRESS]``: run on a Ray cluster (no address: ``$RAY_ADDRESS``, else a local one)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=False,
        metavar="ADDRESS",
        help=f"{what} on a Ray cluster: ADDRESS (ray://host:10001 or host:6379), else $RAY_ADDRESS, else a new "
        "local cluster on this machine's CPUs (docs/scale.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all verbs registered)."""
    parser = argparse.ArgumentParser(
        prog="mlembed",
        description="Make English sentence embeddings multilingual (knowledge distillation), "
        "then encode, evaluate, index and mine parallel sentences across languages.",
    )
    parser.add_argument("--version", action="version", version=f"mlembed {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors (progress bars stay)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug messages too")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"mlembed.cli.{verb.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mlembed`` console script: 0 on success, 2 on an error (one line on stderr
    naming the file or option and what was expected; ``--debug`` shows the traceback), 130 when interrupted.

    Example:
        >>> main(["info"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = (
        signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    )
    log = logging.getLogger("mlembed")
    saved = (log.level, log.propagate)
    handler = _log_to_stderr(logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C; temporary files were removed on the way out
        print(f"mlembed {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"mlembed {args.verb}: terminated", file=sys.stderr)
        return 143
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the CLI's one place where every error becomes one line
        # BaseException: a Rust library's panic (pyo3's PanicException, e.g. tokenizers out of threads) is one
        if args.debug:
            raise
        print(f"mlembed {args.verb}: error: {error_line(exc, args.verb)}", file=sys.stderr)
        if not isinstance(exc, _expected()) and not _out_of_resources(exc):
            print(
                f"mlembed {args.verb}: this looks like a bug in mlembed: rerun with --debug and report the traceback",
                file=sys.stderr,
            )
        return 2
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])  # main() called from Python leaves logging as it found it
        log.propagate = saved[1]
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _TqdmHandler(logging.Handler):
    """Log records on stderr through ``tqdm.write``, so messages do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _log_to_stderr(level: int) -> logging.Handler:
    """The library logs through ``logging.getLogger(__name__)`` and stays silent for library users below
    WARNING; the command line shows its INFO messages (``-q``: warnings only, ``-v``: debug)."""
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    log = logging.getLogger("mlembed")
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return handler


class Terminated(BaseException):
    """Raised on SIGTERM so that, as on Ctrl-C, every ``with`` block unwinds and removes its temporary files."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def _expected() -> tuple[type[BaseException], ...]:
    """Errors a user can cause (bad input, options, files, memory); anything else is reported as a bug."""
    from mlembed.files import DataError
    from mlembed.models import ModelNotFoundError

    return (DataError, ModelNotFoundError, OSError, ValueError, RuntimeError, MemoryError, LookupError)


def _out_of_resources(exc: BaseException) -> bool:
    """A failure to get memory or a thread, however a library reports it (RuntimeError, a Rust panic...)."""
    text = str(exc)
    return isinstance(exc, MemoryError) or any(
        s in text
        for s in (
            "Resource temporarily unavailable",
            "Cannot allocate memory",
            "can't allocate memory",
            "std::bad_alloc",
            "ThreadPoolBuildError",
            "failed to map segment",  # dlopen of an engine's library under an address-space limit
        )
    )


#: what to lower when a verb runs out of memory or threads (by verb; others get the default)
RESOURCE_HINTS = {
    "distill": "lower --batch-size or --max-seq-length (and keep --gradient-checkpointing)",
    "encode": "lower --token-budget (or --batch-size with --token-budget 0)",
    "serve": "lower --token-budget or --max-batch",
    "mine": "lower --memory-budget or use an approximate --index",
    "index": "lower --batch-size or use a compressed --type (ivfsq, ivfpq)",
}


def error_line(exc: BaseException, verb: str | None = None) -> str:
    """One line for ``exc``: file errors name the file; FAISS's multi-line messages keep their reason; running
    out of memory or threads says what to lower for ``verb``.

    Example:
        >>> error_line(IsADirectoryError(21, "Is a directory", "data/"))
        'data/: is a directory'
        >>> error_line(MemoryError(), "distill")
        'out of memory or threads: lower --batch-size or --max-seq-length (and keep --gradient-checkpointing)'
        >>> error_line(ImportError("libx.so: failed to map segment from shared object"), "serve")
        'out of memory or threads (libx.so: failed to map segment from shared object): lower --token-budget or --max-batch'
        >>> error_line(RuntimeError("Error in void faiss::Clustering::train at Clustering.cpp:275: Error: 'n >= k' failed: "
        ...                         "Number of training points (10) should be at least as large as number of clusters (256)"))
        'FAISS: Number of training points (10) should be at least as large as number of clusters (256)'
    """
    import json

    if isinstance(exc, MemoryError) or _out_of_resources(exc):
        detail = "" if isinstance(exc, MemoryError) else f" ({str(exc).splitlines()[0][:160]})"
        hint = RESOURCE_HINTS.get(verb or "", "lower --batch-size / --memory-budget or use an approximate --index")
        return f"out of memory or threads{detail}: {hint}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and exc.filename is None:
        return "no space left on device: free space where the output (and any --workdir) is written"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    text = str(exc) or type(exc).__name__
    if "faiss" in text and "failed:" in text:
        return "FAISS: " + text.split("failed:", 1)[1].strip().splitlines()[0]
    if isinstance(exc, KeyError):
        text = f"missing key {text}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if len(lines) <= 3 else " ".join(lines[:3]) + " ..."


if __name__ == "__main__":
    sys.exit(main())
