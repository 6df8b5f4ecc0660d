"""Exporting a sentence-transformers model once, into the mlembed cache: ONNX fp32, then int8 variants.

Everything lands under ``$MLEMBED_CACHE/exports/<fingerprint>/`` (a student saved by ``distill`` has a
fingerprint of its own, so retrained weights never reuse an old export), written to a temporary name and
renamed, so a killed export leaves nothing that a later run would trust.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlembed.files import atomic_path, cache_root
from mlembed.windows import model_prompt

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
#: the int8 recipe's version is in the name: a changed recipe never reuses an old export
OPENVINO_INT8_FILE = "openvino-int8-r1.xml"
#: sentences per calibration batch NNCF runs to measure activation ranges (and SmoothQuant's scales)
CALIBRATION_BATCH = 8
#: matmuls kept in float: each layer's FFN down-projection (BERT, RoBERTa/XLM-R, MiniLM, e5, MPNet name it
#: ``layer.N/output/dense``; DistilBERT ``ffn/lin2``). Its input is the GELU output, whose outliers int8
#: cannot hold: on e5-small, quantizing it too measured mean cosine 0.9972 to fp32 (Tatoeba sentences),
#: keeping it 0.9995, at 2.4x and 1.6x torch's speed (benchmarks/encode_speed.py has the current figures)
FLOAT_MATMULS = (r".*layer\.\d+/output/dense/MatMul.*", r".*/ffn/lin2/MatMul.*")


def export_dir(model: Any) -> Path:
    """The cache folder of a model's exports: ``$MLEMBED_CACHE/exports/<fingerprint>``.

    Example:
        >>> from mlembed.models import load_model
        >>> export_dir(load_model("minilm-en")).parent.name
        'exports'
    """
    from mlembed.models import fingerprint

    return cache_root() / "exports" / fingerprint(model)


def input_names(model: Any) -> list[str]:
    """The tensors the model's tokenizer produces and its forward takes, in the exported file's order."""
    features = model.preprocess(["a short one", "and a somewhat longer sentence"])
    return [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features]


def export_onnx(model: Any, folder: Path | None = None) -> Path:
    """Export the model's whole sentence-transformers forward (up to ``sentence_embedding``) to ONNX, once.

    Dynamic batch and sequence axes, opset 17, the legacy TorchScript exporter (the dynamo one does not
    trace sentence-transformers' dict-in, dict-out modules). Returns the cached file when it exists.

    Example:
        >>> from mlembed.models import load_model
        >>> export_onnx(load_model("minilm-en")).name
        'model.onnx'
    """
    import torch

    folder = folder or export_dir(model)
    target = folder / ONNX_FILE
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    names = input_names(model)

    class Forward(torch.nn.Module):
        def __init__(self, st: Any):
            super().__init__()
            self.st = st

        def forward(self, *tensors: Any) -> Any:
            return self.st(dict(zip(names, tensors)))["sentence_embedding"]

    features = model.preprocess(["a short one", "and a somewhat longer sentence"])
    axes = {k: {0: "batch", 1: "tokens"} for k in names} | {"embedding": {0: "batch"}}
    log.info("exporting %s to ONNX (once per model)", folder.name)
    with atomic_path(target, suffix=".onnx") as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on traced branches are expected here
        torch.onnx.export(
            Forward(model).eval().cpu(),
            tuple(features[k].cpu() for k in names),
            str(tmp),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return target


def quantize_onnx_dynamic(onnx_file: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization (per-channel weights, activations quantized at run time).

    Example:
        >>> from mlembed.models import load_model
        >>> quantize_onnx_dynamic(export_onnx(load_model("minilm-en"))).name  # doctest: +SKIP
        'model.int8.onnx'
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = onnx_file.with_name(ONNX_INT8_FILE)
    if not target.exists():
        with atomic_path(target, suffix=".onnx") as tmp:
            quantize_dynamic(str(onnx_file), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    return target


def quantize_openvino(onnx_file: Path, model: Any, calibration: Sequence[str]) -> Path:
    """Static int8 for OpenVINO by NNCF: activation ranges calibrated on ``calibration`` sentences.

    NNCF's transformer scheme: SmoothQuant moves activation outliers into the weights, weights are
    int8 per channel, activations int8 per tensor, and the softmax/normalisation stay in float; fast bias
    correction then repairs each layer's mean shift. The FFN down-projections stay float
    (:data:`FLOAT_MATMULS`). Whether the result keeps quality is not assumed:
    :func:`mlembed.backends.probe.choose_backend` measures it on sentences held out from calibration.

    Example:
        >>> from mlembed.models import load_model
        >>> m = load_model("minilm-en")
        >>> quantize_openvino(export_onnx(m), m, ["Hello", "Hallo"]).name  # doctest: +SKIP
        'openvino-int8-r1.xml'
    """
    import nncf
    import openvino as ov

    target = onnx_file.with_name(OPENVINO_INT8_FILE)
    if target.exists():
        return target
    if not calibration:
        raise ValueError("int8 calibration needs sentences")
    prompt = model_prompt(model)
    names = input_names(model)
    batches = []
    for i in range(0, len(calibration), CALIBRATION_BATCH):
        features = model.preprocess([prompt + s for s in calibration[i : i + CALIBRATION_BATCH]])
        batches.append({k: np.asarray(features[k]) for k in names})
    log.info("quantizing to int8 for OpenVINO on %d calibration sentences (once per model)", len(calibration))
    quantized = nncf.quantize(
        ov.Core().read_model(str(onnx_file)),
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),
        ignored_scope=nncf.IgnoredScope(patterns=list(FLOAT_MATMULS), validate=False),
    )
    staging = target.parent / f".{target.stem}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    ov.save_model(quantized, str(staging / target.name), compress_to_fp16=False)
    (staging / "calibration.json").write_text(json.dumps({"sentences": len(calibration)}))
    bin_file = target.with_suffix(".bin")
    (staging / bin_file.name).replace(bin_file)  # the weights first: the .xml appearing means both are complete
    (staging / target.name).replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target
