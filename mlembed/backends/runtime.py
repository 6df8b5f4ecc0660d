"""An exported model run by ONNX Runtime or OpenVINO behind sentence-transformers' ``encode`` signature.

Tokenization stays sentence-transformers' own (``preprocess``, the default prompt prepended as ``encode``
does), so only the forward pass changes engine; :func:`mlembed.encoding.encode` drives it like any model
(sentences sorted by token length, forward passes cut at the token budget).
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
from mlembed.windows import model_prompt

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "onnx-int8", "auto")
#: the precision each exported backend runs at, whatever the CPU: the name says it. OpenVINO's CPU plugin
#: would pick bf16 on its own where the CPU has native bf16 (its INFERENCE_PRECISION_HINT default), so every
#: OpenVINO model is compiled with the hint set; ONNX Runtime's CPU provider computes fp32 (int8 where quantized).
PRECISION = {"onnx": "fp32", "onnx-int8": "int8", "openvino": "fp32", "openvino-bf16": "bf16", "openvino-int8": "int8"}


def openvino_config(backend: str) -> dict[str, str]:
    """OpenVINO CPU settings for ``backend``: the bf16 hint only for ``openvino-bf16``, f32 for the rest (the
    int8 model's float layers included), never the plugin's own choice; no runtime cache of kernels per shape.

    Example:
        >>> openvino_config("openvino")["INFERENCE_PRECISION_HINT"], openvino_config("openvino-bf16")["INFERENCE_PRECISION_HINT"]
        ('f32', 'bf16')
    """
    hint = "bf16" if backend == "openvino-bf16" else "f32"
    # no cache of shape-specific kernels: token-budget batches come in ever new shapes, and the cache grew the
    # e5 student's RSS by ~70 MB per 80k sentences at no measured speed gain (103 vs 117 s)
    return {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "CPU_RUNTIME_CACHE_CAPACITY": "0"}


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
            import openvino as ov

            int8 = backend == "openvino-int8"
            file = quantize_openvino(onnx_file, model, probe_sentences()[0]) if int8 else onnx_file
            compiled = ov.Core().compile_model(str(file), "CPU", openvino_config(backend))
            request = compiled.create_infer_request()
            self._run = lambda feed: next(iter(request.infer(feed).values())).copy()

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
            batch = [self.prompt + s for s in sentences[start : start + batch_size]]
            features = self.st.preprocess(batch)
            out[start : start + len(batch)] = self._run({k: np.asarray(features[k]) for k in self.names})
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
