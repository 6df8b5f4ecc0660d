"""Models load offline, fingerprint stably, and encode/stream to .npy with the same numbers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlembed.cli import main
from mlembed.encoding import encode, encode_to_npy, resolve_precision
from mlembed.files import DataError
from mlembed.models import ModelNotFoundError, fingerprint, load_model


@pytest.mark.precision
def test_teacher_alias_encodes_and_matches_plain_sentence_transformers(teacher, numerics):
    from sentence_transformers import SentenceTransformer

    from mlembed.models import teacher_path

    sentences = ["The cat sits on the mat.", "A dog runs in the park.", "Stocks fell sharply on Monday."]
    ours = encode(sentences, teacher, normalize=True)
    plain = SentenceTransformer(teacher_path(), device="cpu").encode(sentences, normalize_embeddings=True)
    assert ours.shape == (3, 384)
    numerics.assert_embeddings_close(ours, plain)
    np.testing.assert_allclose(encode(sentences, teacher, normalize=True, precision="fp32"), plain, atol=1e-5)
    bf16 = encode(sentences, teacher, normalize=True, precision="bf16")  # either CPU: emulated or native
    assert (bf16 * plain).sum(1).min() >= 0.999 and np.abs(bf16 - plain).max() > 0  # close, and really bf16
    # the paraphrase-ish pair is closer than the unrelated one
    assert ours[0] @ ours[1] > ours[0] @ ours[2]


def test_precision_env_decides_auto_and_explicit_wins(monkeypatch):
    monkeypatch.setenv("MLEMBED_PRECISION", "bf16")
    assert resolve_precision("auto") == "bf16" and resolve_precision("fp32") == "fp32"
    monkeypatch.setenv("MLEMBED_PRECISION", "FP32")
    assert resolve_precision("auto") == "fp32" and resolve_precision("bf16") == "bf16"
    monkeypatch.setenv("MLEMBED_PRECISION", "fp16")
    with pytest.raises(ValueError, match="MLEMBED_PRECISION must be fp32 or bf16, got 'fp16'"):
        resolve_precision("auto")
    with pytest.raises(ValueError, match="precision must be auto, fp32 or bf16"):
        resolve_precision("int8")


def test_package_encode_is_the_function_even_after_its_module_loads(teacher):
    import importlib

    import mlembed

    importlib.import_module("mlembed.encoding")
    importlib.import_module("mlembed.distill.pipeline")  # imports the encoding module, as distill(...) does
    assert callable(mlembed.encode)
    assert mlembed.encode(["Hallo Welt"], teacher).shape == (1, 384)
    assert mlembed.encode(["Hallo Welt"], teacher).shape == (1, 384)  # and on its second use


def test_offline_hub_id_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not a local folder.*--model PATH"):
        load_model("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")


def test_missing_local_folder_is_clear():
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        load_model("./no/such/model")


def test_fingerprint_is_stable_and_distinguishes_models(tmp_path, teacher):
    assert fingerprint("minilm-en") == fingerprint(teacher) == fingerprint("minilm-en")
    teacher.save(str(tmp_path / "copy"))
    before = fingerprint(tmp_path / "copy")
    assert before == fingerprint(load_model(tmp_path / "copy"))
    config = tmp_path / "copy" / "config.json"
    config.write_text(config.read_text().replace("}", ', "mlembed_test": 1}', 1))
    assert fingerprint(tmp_path / "copy") != before


def test_fingerprint_sees_retrained_weights_of_the_same_shape(tmp_path, teacher):
    import os

    import torch

    teacher.save(str(tmp_path / "m"))
    weights = next((tmp_path / "m").glob("model.safetensors"))
    before, size = fingerprint(tmp_path / "m"), weights.stat().st_size
    retrained = load_model(tmp_path / "m")
    with torch.no_grad():
        next(retrained.parameters()).mul_(1.01)
    retrained.save(str(tmp_path / "m"))
    assert weights.stat().st_size == size and fingerprint(tmp_path / "m") != before
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched only: the content decides
    assert fingerprint(tmp_path / "m") == fingerprint(tmp_path / "m")


@pytest.mark.precision
def test_encode_to_npy_streams_same_vectors_and_float16(tmp_path, teacher, numerics):
    sentences = [f"Sentence number {i} about topic {i % 7}." for i in range(50)]
    out = encode_to_npy(sentences, tmp_path / "e.npy", teacher, chunk_size=16, show_progress=False)
    streamed = np.load(out)
    direct = encode(sentences, teacher)
    numerics.assert_embeddings_close(streamed, direct)  # bf16: other batches, other padding, other rounding
    half = encode_to_npy(iter(sentences), tmp_path / "h.npy", teacher, dtype="float16", show_progress=False)
    assert np.load(half).dtype == np.float16
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_cli_encode_with_sidecar_and_bad_utf8(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_bytes(b"Hallo Welt\nBonjour le monde\n" + b"bad \xff line\n")
    rc = main(["encode", str(src), "-o", str(tmp_path / "o.npy")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{src}:3: invalid UTF-8" in err
    assert not (tmp_path / "o.npy").exists()  # no half-written output
    rc = main(
        [
            "encode",
            str(src),
            "-o",
            str(tmp_path / "o.npy"),
            "--on-bad-line",
            "skip",
            "--sidecar",
            str(tmp_path / "o.jsonl"),
            "--normalize",
        ]
    )
    assert rc == 0
    emb = np.load(tmp_path / "o.npy")
    assert emb.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "o.jsonl").read_text().count("\n") == 2


def test_data_error_names_file_and_line():
    assert str(DataError("expected two columns", "a.tsv", 3)) == "a.tsv:3: expected two columns"


def test_compare_prints_shape_and_table(capsys):
    assert main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "embeddings (7, 384)" in out
    assert "zh-Hans" in out and "minilm-en" in out


def _deliverable(sig: int, argv: list[str]) -> list[str]:
    """``argv`` run with ``sig`` as a shell's Ctrl-C or ``kill`` gives it: unblocked, default disposition (a
    wrapper that resets both, then execs ``argv``; a child inherits its parent's signal mask and ignored
    signals, and in one full run, after the Ray tests on a loaded CPU, the SIGINT child finished its work
    with 0, as if the signal never reached it)."""
    code = (
        "import os, signal, sys; s = signal.Signals(int(sys.argv[1])); "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {s}); signal.signal(s, signal.SIG_DFL); "
        "os.execv(sys.argv[2], sys.argv[2:])"
    )
    return [sys.executable, "-c", code, str(int(sig)), *argv]


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_killed_encode_leaves_no_temporary_files(tmp_path, sig):
    src = tmp_path / "in.txt"
    # long enough that no CPU finishes it between the temporary's appearance and the signal (a state, not a time)
    src.write_text("".join(f"Sentence number {i} about a topic worth encoding.\n" for i in range(40000)))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        _deliverable(
            sig, [sys.executable, "-m", "mlembed", "encode", str(src), "-o", str(out / "e.npy"), "--batch-size", "8"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".*")) and proc.poll() is None:
        time.sleep(0.01)  # the temporary .npy exists: encoding has begun
    assert proc.poll() is None, "encode ended before it could be signalled"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err[-1000:]
    assert "Traceback" not in err
    assert list(out.iterdir()) == []  # neither the output nor a hidden .npy/.raw temporary


@pytest.mark.slow
def test_kill_9_keeps_the_previous_output_and_the_rerun_cleans_up(tmp_path, teacher):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"Sentence number {i} about a topic worth encoding.\n" for i in range(40000)))
    out = tmp_path / "out"
    out.mkdir()
    np.save(out / "e.npy", np.ones((2, 3), dtype=np.float32))  # a previous run's output
    previous = (out / "e.npy").read_bytes()
    cmd = [sys.executable, "-m", "mlembed", "encode", str(src), "-o", str(out / "e.npy"), "--batch-size", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".*")) and proc.poll() is None:
        time.sleep(0.01)  # the temporary exists: encoding has begun
    assert proc.poll() is None, "encode ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "e.npy").read_bytes() == previous  # never a partial file
    assert list(out.glob(".*"))  # kill -9 runs no cleanup ...
    src.write_text("".join(f"Sentence number {i}.\n" for i in range(300)))  # the rerun: a shorter input
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    # ... the next run removes the dead writer's files; beside the output, its metadata (model, window, long inputs)
    assert sorted(p.name for p in out.iterdir()) == ["e.json", "e.npy"]
    assert np.load(out / "e.npy").shape == (300, 384)


def test_a_killed_resumable_encoding_continues_after_its_last_chunk(tmp_path, teacher):
    """``resume_key`` (what ``mlembed mine`` passes): a run killed after two chunks continues at the third, its
    long-input counts kept; the file is an uninterrupted run's, row for row; another key starts afresh."""
    from mlembed.windows import LengthReport

    lines = [f"Sentence number {i} about {'cats' if i % 2 else 'trains'}." for i in range(50)]
    lines[3] = "word " * 600  # over the window: truncated and counted, in the chunk before the kill
    whole = tmp_path / "whole.npy"
    encode_to_npy(lines, whole, teacher, count=50, chunk_size=8, precision="fp32", show_progress=False)
    out, key = tmp_path / "resumed.npy", {"source": "lines", "model": fingerprint(teacher)}

    def killed_after(n):
        yield from lines[:n]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_to_npy(killed_after(20), out, teacher, count=50, chunk_size=8, precision="fp32", resume_key=key)
    state = json.loads(out.with_suffix(".partial.json").read_text())
    assert state["rows"] == 16 and state["report"]["over"] == 1 and not out.exists()
    encoded = []
    real = encode_to_npy.__globals__["encode"]
    spy = lambda chunk, *a, **k: encoded.append(len(chunk)) or real(chunk, *a, **k)  # noqa: E731
    report = LengthReport("truncate", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(encode_to_npy.__globals__, "encode", spy)
        encode_to_npy(lines, out, teacher, count=50, chunk_size=8, precision="fp32", resume_key=key, report=report)
    assert sum(encoded) == 34 and report.over == 1 and report.first_over == [3]  # rows 16.. only
    np.testing.assert_array_equal(np.load(out), np.load(whole))
    assert not out.with_suffix(".partial.npy").exists() and not out.with_suffix(".partial.json").exists()

    with pytest.raises(KeyboardInterrupt):
        encode_to_npy(killed_after(20), out, teacher, count=50, chunk_size=8, precision="fp32", resume_key=key)
    encoded.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(encode_to_npy.__globals__, "encode", spy)
        encode_to_npy(lines, out, teacher, count=50, chunk_size=8, precision="fp32", resume_key={**key, "model": "x"})
    assert sum(encoded) == 50  # another model: nothing of the killed run is reused
    np.testing.assert_array_equal(np.load(out), np.load(whole))


def test_token_budget_keeps_every_row_in_place_and_the_same_vectors(teacher):
    from mlembed.encoding import token_budget_chunks

    texts = ["Hi.", "A considerably longer sentence about the weather in Lisbon today.", "Ok", "Der Hund bellt."] * 5
    budgeted = encode(texts, teacher, precision="fp32", token_budget=40)
    fixed = encode(texts, teacher, precision="fp32", token_budget=None, batch_size=3)
    np.testing.assert_allclose(budgeted, fixed, atol=1e-5)  # padding changes nothing but float rounding
    lengths = [len(x) for x in teacher.tokenizer(texts)["input_ids"]]
    chunks = token_budget_chunks(lengths, 40)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(len(texts)))
    assert all(len(c) == 1 or max(lengths[i] for i in c) * len(c) <= 40 for c in chunks)
    assert len(chunks) < len(texts)  # short sentences share a pass
