"""An exported model run by ONNX Runtime or OpenVINO behind sentence-transformers' ``encode`` signature.

Tokenization gives what sentence-transformers' ``preprocess`` gives (the default prompt prepended as ``encode``
does), so only the forward pass changes engine; :func:`mlembed.encoding.encode` drives it like any model
(sentences sorted by token length, forward passes cut at the token budget). The features come from the model's
own fast tokenizer set up once as ``preprocess`` sets it per call (~40 % less tokenizing, which shares the cores
with the forward passes), after a check on first use that both give the same arrays; else from ``preprocess``.
In bulk (:meth:`ExportedModel.encode_chunks`) they are padded from the ids the token counts kept: each text is
tokenized once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlembed.backends.export import (
    export_onnx,
    input_names,
    quantize_onnx_dynamic,
    quantize_openvino,
)
from mlembed.windows import TokenIds, model_prompt, uncut_ids, uncut_tokenizer

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "onnx-int8", "auto")
#: the precision each exported backend runs at, whatever the CPU: the name says it. OpenVINO's CPU plugin
#: would pick bf16 on its own where the CPU has native bf16 (its INFERENCE_PRECISION_HINT default), so every
#: OpenVINO model is compiled with the hint set; ONNX Runtime's CPU provider computes fp32 (int8 where quantized).
#: texts in several scripts the fast tokenizer is checked on against ``preprocess`` (with the probe's sentences)
CHECK_SENTENCES = [
    "The cat sits on the mat.",
    "Der Hund schläft unter dem Tisch.",
    "猫はマットの上に座っている。",
    "Кошка спит на диване.",
    "القطة نائمة على الأريكة",
    "बिल्ली सो रही है।",
    "Η γάτα κοιμάται.",
    "e\u0301cole, café and naïve",
    "",
]
PRECISION = {"onnx": "fp32", "onnx-int8": "int8", "openvino": "fp32", "openvino-bf16": "bf16", "openvino-int8": "int8"}


def openvino_config(backend: str, bulk: bool = False) -> dict[str, str]:
    """OpenVINO CPU settings for ``backend``: the bf16 hint only for ``openvino-bf16``, f32 for the rest (the
    int8 model's float layers included), never the plugin's own choice; no runtime cache of kernels per shape.
    ``bulk``: many batches in flight (:meth:`ExportedModel.encode_chunks`), so the plugin runs them in parallel
    streams (``THROUGHPUT``), each on its share of the cores; else one batch on all of them (``LATENCY``).

    Example:
        >>> openvino_config("openvino")["INFERENCE_PRECISION_HINT"], openvino_config("openvino-bf16")["INFERENCE_PRECISION_HINT"]
        ('f32', 'bf16')
        >>> openvino_config("openvino", bulk=True)["PERFORMANCE_HINT"]
        'THROUGHPUT'
    """
    hint = "bf16" if backend == "openvino-bf16" else "f32"
    # no cache of shape-specific kernels: token-budget batches come in ever new shapes, and the cache grew the
    # e5 student's RSS by ~70 MB per 80k sentences at no measured speed gain (103 vs 117 s)
    return {
        "INFERENCE_PRECISION_HINT": hint,
        "PERFORMANCE_HINT": "THROUGHPUT" if bulk else "LATENCY",
        "CPU_RUNTIME_CACHE_CAPACITY": "0",
    }


class ExportedModel:
    """A sentence-transformers model's forward on ONNX Runtime or OpenVINO; ``encode`` as sentence-transformers'.

    Made by :func:`load_backend`. It keeps the source model's fingerprint and ``mlembed_source`` (an index
    built with it accepts the same model's queries on any backend) and says which engine ran in ``backend``.

    Example:
        >>> from mlembed.backends import load_backend
        >>> from mlembed.models import load_model
        >>> m = load_backend(load_model("minilm-en"), "onnx")
        >>> m.encode(["Hello world"]).shape, m.backend
        ((1, 384), 'onnx')
    """

    device = "cpu"

    def __init__(self, model: Any, backend: str):
        from mlembed.backends.sentences import probe_sentences
        from mlembed.models import embedding_dim, fingerprint

        if backend not in BACKENDS[1:-1]:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS[1:-1])} here, got {backend!r}")
        self.st, self.backend, self.precision = model, backend, PRECISION[backend]
        self.tokenizer, self.max_seq_length = model.tokenizer, model.max_seq_length
        self.prompt, self.names = model_prompt(model), input_names(model)
        self.fingerprint, self.dim = fingerprint(model), embedding_dim(model)
        self.mlembed_source = getattr(model, "mlembed_source", None)
        onnx_file = export_onnx(model)
        if backend == "onnx" or backend == "onnx-int8":
            import onnxruntime as ort

            file = onnx_file if backend == "onnx" else quantize_onnx_dynamic(onnx_file)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
            self._run = lambda feed: session.run(None, feed)[0]
        else:
            int8 = backend == "openvino-int8"
            self._ov_file = quantize_openvino(onnx_file, model, probe_sentences()[0]) if int8 else onnx_file
            self._run = self._openvino_run

    #: the OpenVINO model, compiled once (it holds the weights) for its first use: one batch at a time (a server,
    #: ``encode``) or many in flight (``encode_chunks``: mining, ``mlembed encode``); either serves both after
    _compiled: Any = None
    _request: Any = None  # the one-batch request, made on first use

    def _openvino(self, bulk: bool) -> Any:
        """The OpenVINO model, compiled for ``bulk`` (see :func:`openvino_config`) if not compiled yet."""
        if self._compiled is None:
            import openvino as ov

            self._compiled = ov.Core().compile_model(str(self._ov_file), "CPU", openvino_config(self.backend, bulk))
        return self._compiled

    def _openvino_run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._request is None:
            self._request = self._openvino(False).create_infer_request()
        return next(iter(self._request.infer(feed).values())).copy()

    _tokenize: Any = None  # the features of a batch (prompted texts), chosen on first use: see _features
    _fill: dict[str, int] | None = None  # padding of each input where the fast tokenizer's ids are read

    def _features(self, batch: Sequence[str]) -> dict[str, np.ndarray]:
        if self._tokenize is None:
            self._tokenize = self._fast_tokenize() or self._preprocess
        return self._tokenize([self.prompt + s for s in batch])

    def _features_of(self, texts: Sequence[str], rows: np.ndarray, tokens: TokenIds | None) -> dict[str, np.ndarray]:
        """The features of ``texts[rows]``: where the checked fast tokenizer makes them, from ``tokens`` (their ids as
        counted, :func:`mlembed.windows.plan_inputs`; the windows of a split text tokenized here), unless one is over
        the window (``preprocess`` cuts it); else tokenized."""
        if self._tokenize is None:
            self._tokenize = self._fast_tokenize() or self._preprocess
        if tokens is not None and self._fill is not None:
            ids = tokens.take(rows).filled(
                lambda at: uncut_ids(self.tokenizer, [self.prompt + texts[rows[i]] for i in at])
            )
            features = self._padded(ids)
            if features is not None:
                return features
        return self._features([texts[i] for i in rows])

    def _padded(self, tokens: TokenIds) -> dict[str, np.ndarray] | None:
        """The features of ``tokens``, padded to the longest as ``preprocess`` pads; None when one is over the window."""
        lengths = tokens.lengths
        if lengths.max(initial=0) > self.max_seq_length:
            return None
        filled = np.arange(lengths.max(initial=0)) < lengths[:, None]
        flat = {"input_ids": tokens.ids, "attention_mask": 1, "token_type_ids": tokens.type_ids}
        out = {}
        for name in self.names:
            array = np.full(filled.shape, self._fill[name], dtype=np.int64)
            array[filled] = flat[name]
            out[name] = array
        return out

    def _preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        features = self.st.preprocess(texts)
        return {k: np.asarray(features[k]) for k in self.names}

    def _fast_tokenize(self) -> Any:
        """The features straight from the model's fast tokenizer (the uncut copy token counts read,
        :func:`mlembed.windows.uncut_tokenizer`), padded to the longest here as ``preprocess`` pads, when both give
        the same arrays on sentences in many scripts, a padded batch, odd whitespace and an over-long text; else
        ``None``. A batch holding a text over the window goes through ``preprocess``, which truncates it."""
        from mlembed.backends.sentences import probe_sentences

        pad = self.tokenizer.pad_token_id
        right = self.tokenizer.padding_side == "right"
        if uncut_tokenizer(self.tokenizer) is None or pad is None or not right:
            return None
        if not set(self.names) <= {"input_ids", "attention_mask", "token_type_ids"}:
            return None
        self._fill = {"input_ids": pad, "attention_mask": 0, "token_type_ids": self.tokenizer.pad_token_type_id}

        def tokenize(texts: list[str]) -> dict[str, np.ndarray]:
            features = self._padded(uncut_ids(self.tokenizer, texts))
            return self._preprocess(texts) if features is None else features

        sentences = [*CHECK_SENTENCES, *probe_sentences()[0][:56]]
        checks = [sentences, [" padded \t", "x"], ["  " + sentences[0] + "\n"], [" ".join(sentences * 40)]]
        for texts in ([self.prompt + t for t in batch] for batch in checks):
            ours, theirs = tokenize(texts), self._preprocess(texts)
            if any(ours[k].shape != theirs[k].shape or (ours[k] != theirs[k]).any() for k in self.names):
                log.info(
                    f"{self.backend}: the fast tokenizer differs from preprocess for this model; using preprocess"
                )
                self._fill = None
                return None
        return tokenize

    def encode_chunks(
        self,
        sentences: Sequence[str],
        chunks: Sequence[np.ndarray],
        out: np.ndarray,
        normalize_embeddings: bool = False,
        progress: Any = None,
        tokens: TokenIds | None = None,
    ) -> None:
        """Encode ``sentences`` into ``out`` (rows as they are), one forward pass per chunk of row indices
        (:func:`mlembed.encoding.token_budget_chunks`). On OpenVINO the passes run as a queue of asynchronous
        requests on the model compiled for throughput: the next chunk's features are made while earlier ones run,
        and each stream computes one on its share of the cores (``benchmarks/encode_speed.py`` times it against one
        chunk at a time). Other engines run the chunks one by one. ``tokens``: the sentences' token ids as
        counted, read instead of tokenizing them again. ``progress(n)`` is called as chunks are handed over.
        """
        if not self.backend.startswith("openvino"):
            for rows in chunks:
                features = self._features_of(sentences, rows, tokens)
                out[rows] = self._run(features)
                if progress is not None:
                    progress(len(rows))
        else:
            import openvino as ov

            compiled = self._openvino(True)  # (at least 2 requests: one is tokenized while the other runs)
            queue = ov.AsyncInferQueue(
                compiled, max(2, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            )

            def done(request: Any, rows: np.ndarray) -> None:
                out[rows] = next(iter(request.results.values()))

            queue.set_callback(done)
            for rows in chunks:
                queue.start_async(self._features_of(sentences, rows, tokens), rows)
                if progress is not None:
                    progress(len(rows))
            queue.wait_all()
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        show_progress_bar: bool = False,
        **_: Any,
    ) -> np.ndarray:
        from tqdm.auto import tqdm

        out = np.empty((len(sentences), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(sentences), batch_size), disable=not show_progress_bar, desc="encode"):
            batch = sentences[start : start + batch_size]
            out[start : start + len(batch)] = self._run(self._features(batch))
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
