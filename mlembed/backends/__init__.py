"""Running a sentence-transformers model on another inference engine: ONNX Runtime or OpenVINO, fp32 or int8.

The model's whole forward (transformer, pooling, dense layers, normalisation) is exported once with
``torch.onnx`` into the mlembed cache, keyed by the model's fingerprint (:mod:`mlembed.backends.export`);
the engines run that file (:mod:`mlembed.backends.runtime`); ``auto`` picks, per CPU, the fastest
backend whose vectors stay within the quality bound, by a short measured probe that is cached
(:mod:`mlembed.backends.probe`). sentence-transformers' own ``backend="onnx"|"openvino"`` goes through
``optimum``, whose releases here require transformers < 5 (and optimum-intel a CUDA build of torch), so
mlembed exports with torch and quantizes with NNCF itself.

Backends:

* ``torch`` -- sentence-transformers as it is (bf16 autocast where the CPU has it);
* ``onnx`` -- ONNX Runtime, fp32;
* ``openvino`` -- OpenVINO, fp32 (its inference-precision hint pinned: the plugin would pick bf16 by itself
  on CPUs with native bf16);
* ``openvino-bf16`` -- OpenVINO, bf16 (a candidate of ``auto`` where bf16 is ``auto``'s precision);
* ``openvino-int8`` -- OpenVINO on a model quantized by NNCF (static, calibrated: SmoothQuant, int8
  weights per channel and activations), offered by ``auto`` only when the probe finds it within the bound;
* ``onnx-int8`` -- ONNX Runtime, dynamic int8 per channel (kept as a measured candidate; ``auto`` rejects
  it wherever it measured too lossy);
* ``auto`` -- the fastest of those that pass the probe, never slower than torch at ``auto``'s precision. The
  probe judges by the vectors (mean cosine 0.999 to torch fp32: ``encode``, ``serve``) or, for a verb that
  encodes for one task, by that task's loss (``mine``: mining F1, ``index build``: retrieval accuracy, at most
  0.5 point below torch fp32 on gettext pairs hidden among distractors): int8 may pass the one and not the other.
"""

from __future__ import annotations

from typing import Any

from mlembed.backends.probe import QUALITY_BOUND, TASK_BOUND, choose_backend
from mlembed.backends.runtime import BACKENDS, PRECISION, ExportedModel


def load_backend(model: Any, backend: str = "torch", precision: str = "auto", task: str | None = None) -> Any:
    """The model on ``backend``: ``torch`` gives it back as it is; ``auto`` asks the cached probe, among the
    candidates of ``precision`` (``fp32`` leaves out the bf16 engines), judged by ``task`` (``mining``: mining
    F1, ``search``: retrieval accuracy, ``None``: the vectors' cosine). An exported backend runs at the
    precision its name says; asking it for another one is an error.

    ``openvino-int8`` is calibrated on the probe's calibration sentences. Peers with engines of their own
    (``muse``, ``e5q4``) stay as they are whatever the backend.

    Example:
        >>> from mlembed.models import load_model
        >>> load_backend(load_model("minilm-en"), "torch").__class__.__name__
        'SentenceTransformer'
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto" and hasattr(model, "preprocess"):
        backend = choose_backend(model, precision=precision, task=task)
    elif backend in PRECISION and precision != "auto" and PRECISION[backend] not in (precision, "int8"):
        better = {"openvino": "openvino-bf16", "openvino-bf16": "openvino"}.get(backend)
        raise ValueError(
            f"backend {backend} runs in {PRECISION[backend]}, not {precision}"
            + (f": use {better}" if better else ": use torch or an openvino backend")
        )
    if backend in ("torch", "auto") or not hasattr(model, "preprocess"):
        return model
    return ExportedModel(model, backend)


__all__ = ["BACKENDS", "QUALITY_BOUND", "TASK_BOUND", "ExportedModel", "choose_backend", "load_backend"]
