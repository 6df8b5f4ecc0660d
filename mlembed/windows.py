"""Inputs longer than a model's window: counted, then refused, truncated or split, and always reported.

A transformer reads at most ``max_seq_length`` tokens (its *window*: the prompt and special tokens
included); sentence-transformers cuts anything longer without a word. Every entry point of mlembed
(:func:`mlembed.encode`, ``encode``, ``index``, ``search``, ``mine``, ``serve``) goes through
:func:`plan_inputs` instead, with one of three modes (``overflow``):

- ``error``: refuse, naming the input, its token count and the window (:class:`InputTooLongError`);
- ``truncate``: read the first window of tokens, as the model alone would, and report it;
- ``split``: an input longer than :data:`SPLIT_WINDOW` tokens (128, or the window if smaller) is cut between
  words into consecutive windows of that size (token spans mapped back to character spans), each encoded,
  their vectors pooled weighted by their tokens: the whole input is read.

Whatever the mode, a :class:`LengthReport` counts what happened (inputs over the window, the longest, the
inputs read in pooled windows, windows made), for the log and for the output's metadata. :func:`passage_spans`
is what the index uses to store a long document as passages (windows with an overlap, each a row with its
character span).
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

logger = logging.getLogger(__name__)

Overflow = Literal["error", "truncate", "split"]
OVERFLOW_MODES = ("error", "truncate", "split")

#: ``split`` reads an input longer than this many tokens (or than the model's window, if smaller) in windows
#: of this size whose vectors are pooled: on sentence-in-document search it beat reading up to 512 tokens at
#: once, on paragraphs and on long texts, for the student and e5-small alike (``benchmarks/long_text.py``)
SPLIT_WINDOW = 128

#: tokens kept free in each window when a text is split: re-tokenising a window's text may give a token or
#: two more than its span held where the cut falls inside a word
SPLIT_SLACK = 4


class InputTooLongError(ValueError):
    """An input longer than the model's window under ``overflow="error"``; ``index`` is its 0-based position."""

    def __init__(self, message: str, index: int, tokens: int, window: int, more: int = 0):
        super().__init__(message)
        self.index, self.tokens, self.window, self.more = index, tokens, window, more

    @classmethod
    def of(cls, index: int, tokens: int, window: int, more: int = 0) -> InputTooLongError:
        message = (
            f"input {index} has {tokens:,} tokens, more than the model's window of {window}"
            + (f" (and {more} more inputs of this batch are)" if more else "")
            + ": shorten it, or choose overflow 'truncate' (read its first window) or 'split' (read it all, in "
            "windows whose vectors are pooled)"
        )
        return cls(message, index, tokens, window, more)

    def shifted(self, offset: int) -> InputTooLongError:
        """The same error with the input numbered ``offset`` later (a chunk's position in a stream)."""
        return self.of(self.index + offset, self.tokens, self.window, self.more)


@dataclass
class LengthReport:
    """What the long-input policy did to a run's inputs (accumulated over calls).

    Example:
        >>> r = LengthReport("truncate", 512)
        >>> r.add_input(0, 600); r.add_input(1, 20); r.over, r.longest, r.longest_input
        (1, 600, 0)
        >>> r.message()
        '1 of 2 inputs longer than the 512-token window (longest: 600 tokens, input 0): truncated to their first 512 tokens (overflow=truncate)'
    """

    mode: str
    window: int | None
    inputs: int = 0
    over: int = 0
    longest: int = 0
    longest_input: int | None = None
    windows: int = 0
    first_over: list[int] = field(default_factory=list)
    pooled: int = 0
    split_window: int | None = None

    def add_input(self, index: int, tokens: int) -> None:
        self.inputs += 1
        if tokens > self.longest:
            self.longest, self.longest_input = tokens, index
        if self.window is not None and tokens > self.window:
            self.over += 1
            if len(self.first_over) < 10:
                self.first_over.append(index)

    def shift(self, offset: int) -> None:
        """Number this report's inputs ``offset`` later (a chunk's counts, before merging them into a run's)."""
        if self.longest_input is not None:
            self.longest_input += offset
        self.first_over = [i + offset for i in self.first_over]

    def merge(self, other: LengthReport) -> None:
        """Add another report's counts (e.g. a shard's) to this one."""
        self.window = self.window or other.window
        self.inputs += other.inputs
        self.over += other.over
        self.windows += other.windows
        self.pooled += other.pooled
        self.split_window = self.split_window or other.split_window
        if other.longest > self.longest:
            self.longest, self.longest_input = other.longest, other.longest_input
        self.first_over = (self.first_over + other.first_over)[:10]

    def message(self, what: str = "inputs") -> str:
        if self.mode == "split":
            return (
                f"{self.over:,} of {self.inputs:,} {what} longer than the {self.window}-token window (longest: "
                f"{self.longest:,} tokens, input {self.longest_input}); {self.pooled:,} {what} over "
                f"{self.split_window} tokens read whole in {self.windows:,} windows of at most {self.split_window} "
                f"tokens whose vectors were pooled (overflow=split)"
            )
        done = {
            "truncate": f"truncated to their first {self.window} tokens",
            "error": "refused",
            "passages": f"stored as {self.windows} passages",
        }[self.mode]
        return (
            f"{self.over:,} of {self.inputs:,} {what} longer than the {self.window}-token window (longest: "
            f"{self.longest:,} tokens, input {self.longest_input}): {done} (overflow={self.mode})"
        )

    def log(self, what: str = "inputs") -> None:
        """A warning when any input was over the model's window, else a note when inputs were read in pooled
        windows; nothing when every input was read as it is."""
        if self.over:
            logger.warning(self.message(what))
        elif self.pooled:
            logger.info(self.message(what))

    def to_dict(self) -> dict:
        return asdict(self)


def model_window(model: Any) -> int | None:
    """The tokens a model reads (``max_seq_length``, prompt and special tokens included); None for peers
    that run their own engine and tokenizer.

    Example:
        >>> from mlembed.models import load_model
        >>> model_window(load_model("minilm-en"))
        256
    """
    if _tokenizer(model) is None:
        return None
    window = getattr(model, "max_seq_length", None)
    return int(window) if window else None


def _tokenizer(model: Any) -> Any:
    tokenizer = getattr(model, "tokenizer", None)
    return tokenizer if tokenizer is not None and callable(tokenizer) else None


def model_prompt(model: Any) -> str:
    """The text the model puts before every input (``"query: "`` for e5), as its ``encode`` does."""
    if isinstance(getattr(model, "prompt", None), str):  # an exported model (mlembed.backends.runtime)
        return model.prompt
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get(getattr(model, "default_prompt_name", None) or "", "")


def _quiet(tokenizer: Any) -> Any:
    """The tokenizer without its one-time 'longer than the maximum' warning: mlembed reports lengths itself."""
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    return tokenizer


def token_counts(model: Any, texts: Sequence[str]) -> np.ndarray | None:
    """Tokens each text takes in the model, prompt and special tokens included, uncut; None without a tokenizer.

    Example:
        >>> from mlembed.models import load_model
        >>> token_counts(load_model("minilm-en"), ["Hello world", "Hi"]).tolist()
        [4, 3]
    """
    tokenizer = _tokenizer(model)
    if tokenizer is None:
        return None
    prompt = model_prompt(model)
    counter = uncut_tokenizer(tokenizer)
    if counter is not None:  # the Rust tokenizer itself: no Python lists of ids (half the time)
        encodings = counter.encode_batch([prompt + t for t in texts])
        return np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(texts))
    ids = _quiet(tokenizer)([prompt + t for t in texts], truncation=False)["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))


@dataclass
class TokenIds:
    """Token ids of texts (prompt and special tokens included, uncut), ragged: text ``i``'s are
    ``ids[offsets[i]:offsets[i + 1]]``, its token type ids alike; ``known[i]`` is False for a text not tokenized
    here (a window of a split input, tokenized when it is read), which then holds no ids."""

    ids: np.ndarray
    type_ids: np.ndarray
    offsets: np.ndarray
    known: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of each text (0 where not ``known``)."""
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> TokenIds:
        """The texts ``rows`` (``-1``: a text not tokenized here), in that order.

        Example:
            >>> t = TokenIds(np.arange(5), np.zeros(5, int), np.array([0, 2, 5]), np.ones(2, bool))
            >>> part = t.take(np.array([1, -1, 0])); part.ids.tolist(), part.lengths.tolist(), part.known.tolist()
            ([2, 3, 4, 0, 1], [3, 0, 2], [True, False, True])
        """
        rows = np.asarray(rows, dtype=np.int64)
        taken = rows >= 0
        lengths, starts, known = np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64), taken.copy()
        lengths[taken], starts[taken], known[taken] = (
            self.lengths[rows[taken]],
            self.offsets[rows[taken]],
            self.known[rows[taken]],
        )
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # where each id taken is in self: its text's start there, plus its place within the text
        where = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return TokenIds(self.ids[where], self.type_ids[where], offsets, known)

    def filled(self, tokenize: Any) -> TokenIds:
        """These texts with those not ``known`` given ids by ``tokenize`` (their positions -> :class:`TokenIds`).

        Example:
            >>> t = TokenIds(np.arange(2), np.zeros(2, int), np.array([0, 2, 2]), np.array([True, False]))
            >>> t.filled(lambda rows: TokenIds(np.array([7]), np.zeros(1, int), np.array([0, 1]), np.ones(1, bool))).ids.tolist()
            [0, 1, 7]
        """
        missing = np.flatnonzero(~self.known)
        if not len(missing):
            return self
        fresh = tokenize(missing)
        both = TokenIds(
            np.concatenate([self.ids, fresh.ids]),
            np.concatenate([self.type_ids, fresh.type_ids]),
            np.concatenate([self.offsets, self.offsets[-1] + fresh.offsets[1:]]),
            np.concatenate([self.known, fresh.known]),
        )
        rows = np.arange(len(self.known))
        rows[missing] = len(self.known) + np.arange(len(missing))
        return both.take(rows)


def uncut_ids(tokenizer: Any, texts: Sequence[str]) -> TokenIds:
    """The token ids of ``texts`` (with their prompt already) by ``tokenizer``'s :func:`uncut_tokenizer` copy.

    Example:
        >>> from mlembed.models import load_model
        >>> uncut_ids(load_model("minilm-en").tokenizer, ["Hello world", "Hi"]).lengths.tolist()
        [4, 3]
    """
    encodings = uncut_tokenizer(tokenizer).encode_batch(list(texts))
    offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings)), out=offsets[1:])

    def flat(field: str) -> np.ndarray:
        chained = itertools.chain.from_iterable(getattr(e, field) for e in encodings)
        return np.fromiter(chained, dtype=np.int64, count=int(offsets[-1]))

    return TokenIds(flat("ids"), flat("type_ids"), offsets, np.ones(len(encodings), dtype=bool))


_COUNTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def uncut_tokenizer(tokenizer: Any) -> Any:
    """A copy of a fast tokenizer's backend that neither truncates nor pads, made once per tokenizer and shared by
    whoever reads token ids uncut (:func:`token_counts`, an exported engine's features); ``None`` for a slow
    tokenizer. A copy, as the tokenizer's own backend is set per call by its wrapper (shared state: see
    :class:`mlembed.serve.inputs.WindowCheck`); one, as a copy of a large vocabulary costs ~240 MB.

    Example:
        >>> from mlembed.models import load_model
        >>> tokenizer = load_model("minilm-en").tokenizer
        >>> uncut_tokenizer(tokenizer) is uncut_tokenizer(tokenizer), uncut_tokenizer(tokenizer).truncation
        (True, None)
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    if tokenizer not in _COUNTERS:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        _COUNTERS[tokenizer] = counter
    return _COUNTERS[tokenizer]


def _overhead(model: Any) -> int:
    """Tokens of a window that are not the text: special tokens and the prompt."""
    tokenizer = _quiet(_tokenizer(model))
    return len(tokenizer(model_prompt(model))["input_ids"])


def window_spans(model: Any, text: str, window: int | None = None, overlap: int = 0) -> list[tuple[int, int, int]]:
    """Cut ``text`` into consecutive spans that each fit the model's window: ``(start, end, tokens)`` in
    characters of ``text``, ``tokens`` the text tokens of the span. Spans overlap by ``overlap`` tokens; a
    text that fits is one span ``(0, len(text), tokens)``.

    Example:
        >>> from mlembed.models import load_model
        >>> model = load_model("minilm-en")
        >>> text = "one two three four five six seven eight nine ten"
        >>> spans = window_spans(model, text, window=10)
        >>> [text[a:b] for a, b, _ in spans]
        ['one two three four', 'five six seven eight', 'nine ten']
    """
    window = window or model_window(model)
    tokenizer = _quiet(_tokenizer(model))
    if window is None or tokenizer is None:
        raise ValueError("window_spans needs a model with a tokenizer and a max_seq_length")
    budget = window - _overhead(model) - SPLIT_SLACK
    if budget < 1:
        raise ValueError(f"a window of {window} tokens leaves no room for text after the prompt and special tokens")
    if not 0 <= overlap < budget:
        raise ValueError(f"overlap must be in [0, {budget}) tokens for this window, got {overlap}")
    offsets = [o for o in tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]
    offsets = [o for o in offsets if o[1] > o[0]] or [(0, len(text))]
    if len(offsets) <= budget:
        return [(0, len(text), len(offsets))]

    def starts_word(i: int) -> bool:  # a gap before it (WordPiece) or a leading space in it (SentencePiece)
        return offsets[i][0] > offsets[i - 1][1] or text[offsets[i][0]].isspace()

    def snap(i: int, floor: int) -> int:  # cut before a word: up to a quarter of the budget back, else at i
        for j in range(i, max(floor, i - budget // 4), -1):
            if starts_word(j):
                return j
        return i

    spans, start = [], 0
    while True:
        end = min(start + budget, len(offsets))
        if end < len(offsets):
            end = snap(end, start + 1)
        first = 0 if start == 0 else offsets[start][0]
        while first < len(text) and text[first].isspace():
            first += 1
        last = len(text) if end == len(offsets) else offsets[end - 1][1]
        spans.append((first, last, end - start))
        if end == len(offsets):
            return spans
        start = snap(end - overlap, start + 1) if overlap else end


def passage_spans(
    model: Any,
    texts: Sequence[str],
    overlap: int | None = None,
    report: LengthReport | None = None,
    first_index: int = 0,
) -> list[list[tuple[int, int, int]]]:
    """Each text as passages of the model's window overlapping by ``overlap`` tokens (default: an eighth of
    the window): :func:`window_spans` for a text over the window, else the text itself ``(0, len, 0)``. The
    texts over the window and the passages made are counted in ``report`` (inputs numbered from ``first_index``).

    Example:
        >>> from mlembed.models import load_model
        >>> model = load_model("minilm-en"); model.max_seq_length = 16
        >>> [len(p) for p in passage_spans(model, ["short", " ".join(f"w{i}" for i in range(20))], overlap=1)]
        [1, 5]
    """
    window = model_window(model)
    if window is None:
        raise ValueError("passages need a model with a tokenizer and a max_seq_length")
    overlap = max(0, window // 8) if overlap is None else overlap
    out = []
    for i, (text, tokens) in enumerate(zip(texts, token_counts(model, texts).tolist())):
        if report is not None:
            report.add_input(first_index + i, tokens)
        spans = window_spans(model, text, window, overlap) if tokens > window else [(0, len(text), 0)]
        if report is not None and len(spans) > 1:
            report.windows += len(spans)
        out.append(spans)
    return out


@dataclass
class InputPlan:
    """The texts to run through the model for a list of inputs, and how to get each input's vector back:
    ``texts[i]`` belongs to input ``owner[i]`` with pooling weight ``weight[i]``; ``lengths[i]`` is the
    tokens the model will read of it (for token-budget batching)."""

    texts: list[str]
    owner: np.ndarray
    weight: np.ndarray
    lengths: np.ndarray | None
    tokens: TokenIds | None = None

    def pool(self, vectors: np.ndarray, n: int) -> np.ndarray:
        """One vector per input: the weighted mean of its windows' vectors."""
        if len(vectors) == n:  # one text per input: nothing was split
            return vectors
        out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
        np.add.at(out, self.owner, vectors * self.weight[:, None])
        total = np.zeros(n, dtype=np.float32)
        np.add.at(total, self.owner, self.weight)
        return out / np.maximum(total, 1e-12)[:, None]


def plan_inputs(
    model: Any,
    texts: Sequence[str],
    overflow: Overflow,
    report: LengthReport | None = None,
    first_index: int = 0,
    split_window: int | None = SPLIT_WINDOW,
    keep_ids: bool = False,
) -> InputPlan:
    """Apply the long-input policy to ``texts``: count tokens, then refuse or truncate what is longer than the
    model's window, or (``split``) read whatever is longer than ``split_window`` tokens (``None``: the model's
    window) in windows of that size whose vectors are pooled, adding to ``report``. ``first_index`` numbers
    the inputs in messages (the position of ``texts[0]`` in the whole run). ``keep_ids``: the plan keeps the
    token ids counted (:class:`TokenIds`, with a fast tokenizer) for an engine that reads them instead of
    tokenizing each text a second time (:meth:`mlembed.backends.runtime.ExportedModel.encode_chunks`).

    Raises:
        InputTooLongError: ``overflow="error"`` and an input is longer than the window.

    Example:
        >>> from mlembed.models import load_model
        >>> model = load_model("minilm-en")
        >>> plan = plan_inputs(model, ["short", "word " * 400], "split")
        >>> len(plan.texts), plan.owner.tolist()
        (5, [0, 1, 1, 1, 1])
    """
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, got {overflow!r}")
    n = len(texts)
    window = model_window(model)
    tokenizer = _tokenizer(model) if keep_ids and window is not None else None
    tokens = None
    if tokenizer is not None and uncut_tokenizer(tokenizer) is not None:
        prompt = model_prompt(model)
        tokens = uncut_ids(tokenizer, [prompt + t for t in texts])
    counts = tokens.lengths if tokens is not None else token_counts(model, texts) if window is not None else None
    identity = np.arange(n, dtype=np.int64)
    if counts is None:  # a peer with its own engine: it alone knows its lengths
        return InputPlan(list(texts), identity, np.ones(n, dtype=np.float32), None)
    if report is not None:
        report.window = report.window or window
        for i, c in enumerate(counts.tolist()):
            report.add_input(first_index + i, c)
    over = np.flatnonzero(counts > window)
    if overflow == "error" and len(over):
        i = int(over[0])
        raise InputTooLongError.of(first_index + i, int(counts[i]), window, len(over) - 1)
    piece = min(window, split_window or window)
    if report is not None and overflow == "split":
        report.split_window = piece
    if overflow != "split" or not np.any(counts > piece):
        return InputPlan(list(texts), identity, np.ones(n, dtype=np.float32), np.minimum(counts, window), tokens)
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[float] = []
    lengths: list[int] = []
    whole: list[int] = []  # each piece's input when that is read whole, else -1 (a window)
    overhead = _overhead(model)
    for i, text in enumerate(texts):
        if counts[i] <= piece:
            pieces.append(text)
            whole.append(i)
            owner.append(i)
            weight.append(float(counts[i] - overhead))
            lengths.append(int(counts[i]))
            continue
        spans = window_spans(model, text, piece)
        if report is not None:
            report.windows += len(spans)
            report.pooled += 1
        for a, b, held in spans:
            pieces.append(text[a:b])
            whole.append(-1)
            owner.append(i)
            weight.append(float(held))
            lengths.append(min(piece, held + overhead + SPLIT_SLACK))
    return InputPlan(
        pieces,
        np.asarray(owner, dtype=np.int64),
        np.maximum(np.asarray(weight, dtype=np.float32), 1.0),
        np.asarray(lengths, dtype=np.int64),
        None if tokens is None else tokens.take(np.asarray(whole, dtype=np.int64)),
    )
