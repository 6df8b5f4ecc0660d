"""Backends: the same vectors from ONNX Runtime and OpenVINO as from torch, cached exports, the measured ``auto``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

# .ci/run runs this module again under MLEMBED_PRECISION=fp32 and =bf16 (auto's candidates and torch's precision
# follow it); both OpenVINO hints are exercised by name in every run
pytestmark = pytest.mark.precision

SENTENCES = [
    "The cat sits on the mat.",
    "Die Katze sitzt auf der Matte.",
    "猫がマットの上に座っている。",
    "Le chat est assis sur le tapis, et il regarde les oiseaux qui passent devant la fenêtre ouverte.",
    "Кошка сидит на коврике.",
    "x",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One mlembed cache for the module: the export is made once and reused by every test here."""
    folder = tmp_path_factory.mktemp("mlembed-cache")
    old = os.environ.get("MLEMBED_CACHE")
    os.environ["MLEMBED_CACHE"] = str(folder)
    yield folder
    if old is None:
        del os.environ["MLEMBED_CACHE"]
    else:
        os.environ["MLEMBED_CACHE"] = old


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_fp32_backends_give_torch_fp32_vectors(cache, teacher, backend):
    """fp32 by name on every CPU: OpenVINO alone would run bf16 where the CPU has it (its own default hint)."""
    from mlembed.backends import load_backend
    from mlembed.encoding import encode

    expected = encode(SENTENCES, teacher, precision="fp32", normalize=True)
    model = load_backend(teacher, backend, precision="fp32")
    got = encode(SENTENCES, model, normalize=True)
    assert model.backend == backend and model.precision == "fp32"
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # without the token budget too (fixed batches, padding inside a batch must not change a vector)
    np.testing.assert_allclose(encode(SENTENCES, model, normalize=True, token_budget=None), expected, atol=2e-5)
    # a text longer than the window goes through the same long-input policy on the engine: split, pooled, reported
    from mlembed.windows import LengthReport

    long = [" ".join(SENTENCES * 15), " ".join(SENTENCES[::-1] * 15)]
    report = LengthReport("split", None)
    got = encode(long, model, normalize=True, report=report)
    assert report.window == 256 and report.over == 2 and report.pooled == 2 and report.windows >= 6
    np.testing.assert_allclose(got, encode(long, teacher, precision="fp32", normalize=True), atol=2e-5)


def test_openvino_bf16_is_its_own_backend(cache, teacher):
    """The bf16 hint is asked for by name (run on every CPU: where bf16 is not native OpenVINO computes f32)."""
    from mlembed.backends import load_backend
    from mlembed.backends.runtime import openvino_config
    from mlembed.encoding import encode

    assert openvino_config("openvino")["INFERENCE_PRECISION_HINT"] == "f32"
    assert openvino_config("openvino-int8")["INFERENCE_PRECISION_HINT"] == "f32"
    model = load_backend(teacher, "openvino-bf16")
    assert model.precision == "bf16"
    cosine = (encode(SENTENCES, model, normalize=True) * encode(SENTENCES, teacher, "fp32", normalize=True)).sum(1)
    assert cosine.min() > 0.999  # bf16 weights and activations: close to fp32, not equal
    with pytest.raises(ValueError, match="backend openvino runs in fp32, not bf16: use openvino-bf16"):
        load_backend(teacher, "openvino", precision="bf16")


def test_export_is_made_once_per_model_and_keeps_the_fingerprint(cache, teacher, e5_folder):
    from mlembed.backends import load_backend
    from mlembed.backends.export import export_dir
    from mlembed.models import fingerprint, load_model, model_info

    first = load_backend(teacher, "onnx")
    onnx_file = export_dir(teacher) / "model.onnx"
    stamp = onnx_file.stat().st_mtime_ns
    second = load_backend(teacher, "onnx")
    assert onnx_file.stat().st_mtime_ns == stamp, "the export was made again"
    assert fingerprint(first) == fingerprint(second) == fingerprint(teacher)
    assert model_info(first)["backend"] == "onnx" and model_info(teacher)["backend"] == "torch"
    # another model (e5-small, with its "query: " prompt) gets its own export and its own vectors
    e5 = load_model(str(e5_folder))
    assert export_dir(e5) != export_dir(teacher)
    expected = e5.encode(SENTENCES[:3], normalize_embeddings=True)
    np.testing.assert_allclose(
        load_backend(e5, "onnx").encode(SENTENCES[:3], normalize_embeddings=True), expected, atol=2e-5
    )


def test_auto_rejects_a_backend_outside_the_quality_bound(cache, teacher):
    """Dynamic int8 is faster but measured at mean cosine ~0.99 on MiniLM: the probe must not pick it."""
    from mlembed.backends.probe import QUALITY_BOUND, probe

    result = probe(teacher, ("torch", "onnx-int8"), repeats=1, precision="fp32")
    rows = result["rows"]
    assert rows["torch"]["precision"] == "fp32" and rows["onnx-int8"]["precision"] == "int8"
    assert rows["torch"]["passes"] and rows["torch"]["mean_cosine"] > 0.99999
    assert rows["onnx-int8"]["mean_cosine"] < QUALITY_BOUND["mean_cosine"] and not rows["onnx-int8"]["passes"]
    assert result["chosen"] == "torch"


@pytest.mark.slow
def test_auto_is_probed_once_then_read_from_the_cache(cache, teacher, monkeypatch):
    from mlembed.backends import load_backend, probe

    calls = []
    real = probe.probe
    monkeypatch.setattr(
        probe,
        "probe",
        lambda model, _, precision, task: calls.append(precision) or real(model, ("torch", "onnx"), 1, precision),
    )
    first = load_backend(teacher, "auto", precision="fp32")
    second = load_backend(teacher, "auto", precision="fp32")
    assert calls == ["fp32"]
    assert getattr(first, "backend", "torch") == getattr(second, "backend", "torch")
    verdicts = json.loads((cache / "backends.json").read_text())
    (verdict,) = [v for k, v in verdicts.items() if k.startswith(probe.probe_key(teacher, "fp32").split("|")[0])]
    assert verdict["chosen"] in ("torch", "onnx") and verdict["rows"][verdict["chosen"]]["passes"]
    # a verdict is kept per precision: bf16 is probed again, with its bf16 engines among the candidates
    load_backend(teacher, "auto", precision="bf16")
    assert calls == ["fp32", "bf16"]
    assert probe.candidates_for("bf16") == ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "onnx-int8")


class _Rotated:
    """A stand-in engine whose vectors are torch's turned by a fixed rotation: every cosine between its own
    vectors is kept (so is any mining or search), none of its vectors is near torch's."""

    def __init__(self, model, scramble: bool = False):
        self.model, self.scramble = model, scramble
        q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(384, 384)))
        self.rotation = q.astype(np.float32)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, sentences, **kw):
        vectors = self.model.encode(sentences, **kw) @ self.rotation
        if self.scramble:  # a broken engine: each sentence gets an unrelated vector
            rng = np.random.default_rng([len(s) for s in sentences])
            vectors = rng.normal(size=vectors.shape).astype(np.float32)
        return vectors


@pytest.mark.slow
def test_auto_for_a_task_judges_an_engine_by_the_task_not_by_its_vectors(cache, teacher, monkeypatch):
    """``mine``/``index build`` accept an engine by mining F1 / retrieval accuracy on gettext pairs hidden among
    distractors (at most 0.5 point below torch fp32), not by the vectors' cosine: a rotated space passes the task
    judge and fails the vector bound; an engine that scrambles sentences fails both; verdicts are kept per task."""
    from mlembed.backends import probe
    from mlembed.backends.sentences import task_sentences

    english, translations, n = task_sentences()
    assert n == 1000 and not set(english) & set(probe.probe_sentences()[0])  # int8 never calibrates on them
    keep = list(range(300)) + list(range(1000, 1300))  # 300 gold pairs and 300 distractors a side: seconds
    small = ([english[i] for i in keep], [translations[i] for i in keep], 300)
    monkeypatch.setattr(probe, "task_sentences", lambda: small)
    monkeypatch.setattr(probe, "ExportedModel", lambda model, name: _Rotated(model, scramble=name == "onnx-int8"))
    result = probe.probe(teacher, ("torch", "onnx", "onnx-int8"), precision="fp32", task="mining")
    rows, fp32 = result["rows"], result["fp32"]
    assert result["task"] == "mining" and fp32["mining_f1"] > 5 and fp32["search_accuracy"] > 5
    assert rows["torch"]["mining_f1"] == fp32["mining_f1"] and rows["torch"]["passes"]
    assert rows["onnx"]["mean_cosine"] < 0.5  # far from torch's vectors ...
    assert (
        abs(rows["onnx"]["mining_f1"] - fp32["mining_f1"]) <= probe.TASK_BOUND and rows["onnx"]["passes"]
    )  # ... same task
    assert rows["onnx-int8"]["mining_f1"] < fp32["mining_f1"] - 5 and not rows["onnx-int8"]["passes"]
    assert not probe.probe(teacher, ("torch", "onnx"), repeats=1, precision="fp32")["rows"]["onnx"]["passes"]
    with pytest.raises(ValueError, match="task must be one of mining, search"):
        probe.choose_backend(teacher, task="clustering")


def test_the_cli_offers_every_backend():
    from mlembed.backends import BACKENDS
    from mlembed.cli import BACKENDS as CLI_BACKENDS

    assert tuple(CLI_BACKENDS) == BACKENDS


def test_unknown_backend_is_a_clear_error(teacher):
    from mlembed.backends import load_backend

    with pytest.raises(ValueError, match="backend must be one of torch, onnx, openvino"):
        load_backend(teacher, "tensorrt")


def test_cli_encode_on_openvino_matches_torch(cache, tmp_path):
    from mlembed.cli import main

    src = tmp_path / "s.txt"
    src.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    for backend in ("torch", "openvino"):
        out = str(tmp_path / f"{backend}.npy")
        assert main(["encode", str(src), "-o", out, "--backend", backend, "--precision", "fp32"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "openvino.npy"), np.load(tmp_path / "torch.npy"), atol=2e-5)


@pytest.mark.slow
def test_int8_is_calibrated_once_and_stays_close(cache, teacher):
    """Static int8 (NNCF) on MiniLM: measured mean cosine 0.998 to fp32 -- close, but under auto's bound."""
    from mlembed.backends import load_backend
    from mlembed.backends.export import OPENVINO_INT8_FILE, export_dir
    from mlembed.encoding import encode

    model = load_backend(teacher, "openvino-int8")
    xml = export_dir(teacher) / OPENVINO_INT8_FILE
    stamp = xml.stat().st_mtime_ns
    expected = encode(SENTENCES, teacher, precision="fp32", normalize=True)
    cosine = (encode(SENTENCES, model, normalize=True) * expected).sum(1)
    assert cosine.mean() > 0.99 and cosine.min() > 0.95
    load_backend(teacher, "openvino-int8")
    assert xml.stat().st_mtime_ns == stamp, "quantized again"


def test_openvino_queues_chunks_and_keeps_every_row_in_its_place(cache, teacher):
    """Bulk encoding queues the token-budget chunks as asynchronous requests on the model compiled for throughput
    (tokenizing the next while others run): the vectors are the one-batch-at-a-time path's, row for row."""
    from mlembed.backends import load_backend
    from mlembed.encoding import encode, token_budget_chunks

    sentences = [f"{s} ({i})" for i in range(40) for s in SENTENCES]
    expected = encode(sentences, teacher, precision="fp32", normalize=True)
    model = load_backend(teacher, "openvino", precision="fp32")
    lengths = [len(model.tokenizer(s)["input_ids"]) for s in sentences]
    chunks = token_budget_chunks(lengths, 64)  # many small chunks of several shapes, in flight together
    assert len(chunks) > 20
    out, handed = np.zeros((len(sentences), model.dim), dtype=np.float32), []
    model.encode_chunks(sentences, chunks, out, normalize_embeddings=True, progress=handed.append)
    assert sum(handed) == len(sentences)
    np.testing.assert_allclose(out, expected, atol=2e-5)
    np.testing.assert_allclose(encode(sentences, model, normalize=True, token_budget=64), expected, atol=2e-5)
    # the model compiled for throughput serves one batch at a time too (a server after a bulk job)
    np.testing.assert_allclose(model.encode(sentences[:3], normalize_embeddings=True), expected[:3], atol=2e-5)


def test_features_are_preprocess_s_and_a_tokenizer_that_differs_falls_back_to_it(cache, teacher, e5_folder):
    """An exported model tokenizes with a copy of the fast tokenizer set up once: the arrays sentence-transformers'
    ``preprocess`` gives, for both tokenizer kinds (BERT word pieces with token types, XLM-R with the e5 prompt),
    on users' text (whitespace, empty lines, a text over the window); where a model's tokenizer would differ, the
    check on first use keeps ``preprocess``. Token counts come from the same tokenizer, uncut."""
    from mlembed.backends import load_backend
    from mlembed.models import load_model
    from mlembed.windows import token_counts

    texts = [*SENTENCES, "  spaced\tout  ", "", "word " * 700, "e\u0301cole 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
    for source in (teacher, load_model(str(e5_folder))):
        model = load_backend(source, "onnx")
        prompted = [model.prompt + t for t in texts]
        ours, theirs = model._features(texts), model._preprocess(prompted)
        assert model._tokenize.__name__ == "tokenize" and set(ours) == set(model.names) == set(theirs)
        for name in model.names:
            np.testing.assert_array_equal(ours[name], theirs[name])
        assert ours["input_ids"].shape == (len(texts), source.max_seq_length)  # the long text, cut at the window
        wrapper = source.tokenizer(prompted, truncation=False)["input_ids"]
        assert token_counts(source, texts).tolist() == [len(ids) for ids in wrapper]
    model, calls = load_backend(teacher, "onnx"), []
    real = model._preprocess

    def other(texts):  # a preprocess that reads text another way than the tokenizer alone
        calls.append(texts)
        return {k: v + (k == "input_ids") for k, v in real(texts).items()}

    model._preprocess, model._tokenize = other, None
    model._features(["x"])
    assert model._tokenize is other and calls[-1] == [model.prompt + "x"]


def test_each_text_is_tokenized_once_and_the_counted_ids_are_the_features(cache, teacher, e5_folder):
    """Counting the tokens of a text (to sort and batch it) keeps its ids, and an exported engine reads them: each
    text goes through the tokenizer once, windows of a split text and texts over the window (cut by ``preprocess``)
    aside; the vectors are those of tokenizing every chunk again, for both tokenizer kinds (a long text truncated
    by BERT's, split by XLM-R's with the e5 prompt)."""
    from mlembed.backends import load_backend
    from mlembed.encoding import encode
    from mlembed.models import load_model
    from mlembed.windows import _COUNTERS, uncut_tokenizer

    texts = [f"{s} ({i})" for i in range(30) for s in SENTENCES] + ["word " * 700, "  spaced\tout  ", ""]
    for source, overflow in ((teacher, "truncate"), (load_model(str(e5_folder)), "split")):
        model = load_backend(source, "onnx")
        model._features(["warm up"])  # (the check on first use tokenizes its own sentences)
        real, seen = uncut_tokenizer(model.tokenizer), []
        _COUNTERS[model.tokenizer] = _Counting(real, seen)
        try:
            ours = encode(texts, model, normalize=True, token_budget=256, overflow=overflow)
        finally:
            _COUNTERS[model.tokenizer] = real
        whole = [model.prompt + t for t in texts[:-3] + texts[-2:]]
        assert sorted(s for s in seen if s in whole) == sorted(whole)  # each text whole once
        tokenized = model._features
        model._features_of = lambda texts, rows, tokens, again=tokenized: again([texts[i] for i in rows])
        np.testing.assert_array_equal(ours, encode(texts, model, normalize=True, token_budget=256, overflow=overflow))


class _Counting:
    """A tokenizer that counts the texts it is given in ``seen``."""

    def __init__(self, real, seen):
        self.real, self.seen = real, seen

    def __getattr__(self, name):
        return getattr(self.real, name)

    def encode_batch(self, batch):
        self.seen.extend(batch)
        return self.real.encode_batch(batch)
