"""What a request may send as input, and what happens to an input longer than the model reads.

* Strings, or token-id arrays as OpenAI's API takes them (LangChain's ``OpenAIEmbeddings`` sends those by
  default): decoded back to text with the client's tokenizer, a tiktoken encoding (:class:`TokenDecoder`),
  or refused with a 400 that names LangChain's ``check_embedding_ctx_length=False``.
* Over the model's window (:mod:`mlembed.windows` counts tokens uncut, prompt and specials included): a 400
  naming the input, its tokens and the window, as OpenAI answers; read up to the window only when the request
  (``"truncate": true``) or the server (``--truncate``) asks, and then said in the response.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.serve.errors import ApiError
from mlembed.windows import model_window, token_counts

#: the encoding LangChain and OpenAI's embedding models tokenize with (``tiktoken.encoding_for_model`` falls back
#: to it for a model name it does not know, such as a served student's)
DEFAULT_TOKEN_ENCODING = "cl100k_base"

LANGCHAIN_HINT = (
    "LangChain's OpenAIEmbeddings sends token ids unless it is given check_embedding_ctx_length=False: pass it "
    "(the server then receives the text)"
)


@dataclass
class Limits:
    """What one request may ask (each refused with a 4xx naming the limit) and how batches form."""

    max_inputs: int = 2048  #: strings per request (OpenAI's limit)
    max_input_chars: int = 20_000  #: characters per string
    max_body_bytes: int = 8 << 20  #: request body size
    max_k: int = 100  #: hits per search query
    max_compare: int = 32  #: sentences in one comparison
    max_batch: int = 256  #: sentences gathered from concurrent requests into one batch
    #: padded tokens per model call within a batch (sentences sorted by length); smaller than ``encode``'s
    #: default, measured best for batches of a few dozen unrelated sentences
    token_budget: int = 512
    max_queue: int = 8192  #: sentences waiting for a forward pass
    batch_wait_ms: float = 0.0  #: how long a part-full batch waits for more requests


class TokenDecoder:
    """Token-id arrays back to text with a tiktoken encoding, loaded at first use and kept.

    Args:
        encoding: a tiktoken encoding name (``cl100k_base``: tiktoken reads it from its cache, or fetches it
            once where the machine is online), a ``.tiktoken`` file (base64 token and rank per line, the format
            tiktoken's encodings come in), or None to refuse token ids.

    Example:
        >>> TokenDecoder(None).decode([9906], "input[0]")
        Traceback (most recent call last):
        ...
        mlembed.serve.errors.ApiError: input[0] is a token-id array and this server decodes none (started with --token-encoding none); LangChain's OpenAIEmbeddings sends token ids unless it is given check_embedding_ctx_length=False: pass it (the server then receives the text)
    """

    def __init__(self, encoding: str | None = DEFAULT_TOKEN_ENCODING):
        self.spec = encoding
        self._encoding: Any = None
        self._failure: str | None = None
        self._lock = threading.Lock()
        self.decoded = 0  #: token-id arrays decoded so far

    def _load(self) -> Any:
        with self._lock:
            if self._encoding is None and self._failure is None:
                try:
                    self._encoding = load_encoding(self.spec)
                except Exception as exc:  # noqa: BLE001 - offline, a missing file, no tiktoken: all answered as 400
                    self._failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return self._encoding

    def decode(self, ids: list[int], where: str) -> str:
        """The text of ``ids``; :class:`ApiError` 400 when no encoding is had or an id is not in it."""
        if self.spec is None:
            raise ApiError(
                400,
                f"{where} is a token-id array and this server decodes none (started with --token-encoding none); "
                + LANGCHAIN_HINT,
                "input",
                "token_ids_not_supported",
            )
        encoding = self._load()
        if encoding is None:
            raise ApiError(
                400,
                f"{where} is a token-id array and the server could not load the tokenizer {self.spec!r} to read it "
                f"({self._failure}); " + LANGCHAIN_HINT,
                "input",
                "token_ids_not_supported",
            )
        try:
            text = encoding.decode(ids)
        except (KeyError, OverflowError, ValueError) as exc:
            raise ApiError(
                400, f"{where}: a token id not in the encoding {self.spec!r} ({exc})", "input", "invalid_value"
            ) from None
        self.decoded += 1
        return text


def load_encoding(spec: str) -> Any:
    """A tiktoken encoding by name, or from a ``.tiktoken`` file (decoding needs only its ranks).

    Example:
        >>> import base64, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "bytes.tiktoken")
        >>> _ = open(path, "w").write("".join(f"{base64.b64encode(bytes([i])).decode()} {i}\\n" for i in range(256)))
        >>> load_encoding(path).decode([72, 105])
        'Hi'
    """
    import tiktoken

    if Path(spec).is_file():
        from tiktoken.load import load_tiktoken_bpe

        # pat_str splits text for encoding; decoding (all the server does) never uses it
        return tiktoken.Encoding(
            Path(spec).stem, pat_str=r"\S+|\s+", mergeable_ranks=load_tiktoken_bpe(spec), special_tokens={}
        )
    return tiktoken.get_encoding(spec)


def is_token_ids(value: Any) -> bool:
    """Whether ``value`` is one token-id array (a non-empty list of integers)."""
    return isinstance(value, list) and bool(value) and all(type(v) is int for v in value)


def check_texts(value: Any, field: str, limits: Limits, decoder: TokenDecoder | None = None) -> list[str]:
    """A string, a list of strings or (with a ``decoder``) token-id arrays, each non-empty and within the
    limits, as a list of strings; else :class:`ApiError` 400.

    Example:
        >>> check_texts("Hallo", "input", Limits())
        ['Hallo']
        >>> check_texts(["a", ""], "input", Limits())
        Traceback (most recent call last):
        ...
        mlembed.serve.errors.ApiError: input[1] is empty: expected a non-empty string
    """
    single = isinstance(value, str) or (decoder is not None and is_token_ids(value))
    items = [value] if single else value
    if not isinstance(items, list):
        raise ApiError(400, f"{field}: expected a string or a list of strings, got {_json_type(value)}", field)
    if not items:
        raise ApiError(400, f"{field} is an empty list: expected at least one string", field, "empty_input")
    if len(items) > limits.max_inputs:
        raise ApiError(
            400,
            f"{field} has {len(items):,} strings: at most {limits.max_inputs:,} per request",
            field,
            "too_many_inputs",
        )
    texts = []
    for i, item in enumerate(items):
        where = field if single else f"{field}[{i}]"
        if decoder is not None and is_token_ids(item):
            item = decoder.decode(item, where)
        elif not isinstance(item, str):
            hint = (
                " (token-id arrays are taken on /v1/embeddings and /embed only)"
                if isinstance(item, (int, list))
                else ""
            )
            raise ApiError(400, f"{where}: expected a string, got {_json_type(item)}{hint}", field)
        if not item.strip():
            raise ApiError(400, f"{where} is empty: expected a non-empty string", field)
        if len(item) > limits.max_input_chars:
            raise ApiError(
                400, f"{where} has {len(item):,} characters: at most {limits.max_input_chars:,} per string", field
            )
        texts.append(item)
    return texts


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@dataclass
class Fitted:
    """Inputs checked against the window: tokens each is read with (usage), and those read only in part."""

    tokens: np.ndarray
    window: int | None
    truncated: list[dict] = field(default_factory=list)  #: ``{"index", "tokens"}`` of each input cut at the window

    def header(self) -> dict[str, str]:
        """``X-Truncated-Inputs: 3,7`` when inputs were cut (TEI's answer is a bare list, so it goes here)."""
        return {"X-Truncated-Inputs": ",".join(str(t["index"]) for t in self.truncated)} if self.truncated else {}


class WindowCheck:
    """:func:`fit_window` with a tokenizer of its own, one call at a time.

    A Hugging Face tokenizer keeps its truncation and padding settings in shared state, which each call sets:
    counting tokens uncut in request threads while the forward thread tokenizes with padding made the forward
    pass fail ("Unable to create tensor"). So the check counts with a copy, under a lock.

    Example:
        >>> from mlembed.models import load_model
        >>> WindowCheck(load_model("minilm-en")).fit(["Hello world"], truncate=False).tokens.tolist()
        [4]
    """

    def __init__(self, model: Any):
        self.model = _OwnTokenizer(model) if getattr(model, "tokenizer", None) is not None else model
        self._lock = threading.Lock()

    def fit(self, texts: list[str], truncate: bool, field: str = "input", single: bool = False) -> Fitted:
        """:func:`fit_window` of ``texts``."""
        with self._lock:
            return fit_window(self.model, texts, truncate, field, single)


class _OwnTokenizer:
    """``model`` with a deep copy of its tokenizer (everything else read from the model)."""

    def __init__(self, model: Any):
        import copy

        self._model, self.tokenizer = model, copy.deepcopy(model.tokenizer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def fit_window(model: Any, texts: list[str], truncate: bool, field: str = "input", single: bool = False) -> Fitted:
    """Count each input's tokens against the model's window: over it, :class:`ApiError` 400
    (``context_length_exceeded``) unless ``truncate``, in which case the input is read up to the window.

    Example:
        >>> from mlembed.models import load_model
        >>> m = load_model("minilm-en")
        >>> fit_window(m, ["Hello world"], truncate=False).tokens.tolist()
        [4]
        >>> fit_window(m, ["word " * 300], truncate=False)
        Traceback (most recent call last):
        ...
        mlembed.serve.errors.ApiError: input[0] has 302 tokens: this model's maximum context length is 256 tokens; shorten it, send "truncate": true to embed its first 256 tokens, or start the server with --truncate
    """
    window = model_window(model)
    counts = token_counts(model, texts) if window else None
    if counts is None:  # a peer with its own tokenizer and window: words, for usage only
        return Fitted(np.array([len(t.split()) for t in texts], dtype=np.int64), None)
    over = np.flatnonzero(counts > window)
    if len(over) and not truncate:
        first = int(over[0])
        where = field if single else f"{field}[{first}]"
        more = f" ({len(over) - 1} more input(s) over it)" if len(over) > 1 else ""
        raise ApiError(
            400,
            f"{where} has {int(counts[first]):,} tokens: this model's maximum context length is {window:,} tokens{more}; "
            f'shorten it, send "truncate": true to embed its first {window:,} tokens, or start the server with '
            "--truncate",
            field,
            "context_length_exceeded",
        )
    truncated = [{"index": int(i), "tokens": int(counts[i])} for i in over]
    return Fitted(np.minimum(counts, window), window, truncated)
