"""Margin mining: every mode and margin against a literal LASER-style implementation, a hand-checked toy,
calibration, dedupe and atomic TSV output, and kill -9 + --resume giving the uninterrupted output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlembed.files import DataError
from mlembed.knn import knn_both_ways, shard_sizes
from mlembed.mine import (
    MARGINS,
    MODES,
    MiningOptions,
    best_threshold,
    calibrate_threshold,
    mine_embeddings,
    mine_files,
)


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def laser_mine(x: np.ndarray, y: np.ndarray, k: int, margin: str, mode: str) -> set[tuple[int, int, float]]:
    """LASER mine_bitexts.py, transcribed literally (loops, brute-force k-NN)."""
    sim = x @ y.T
    x2y_ind = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    y2x_ind = np.argsort(-sim.T, axis=1, kind="stable")[:, :k]
    x2y_mean = np.take_along_axis(sim, x2y_ind, 1).mean(1)
    y2x_mean = np.take_along_axis(sim.T, y2x_ind, 1).mean(1)
    f = {"ratio": lambda a, b: a / b, "distance": lambda a, b: a - b, "absolute": lambda a, b: a}[margin]

    def scores(a, b, ind, fm, bm):
        out = np.zeros(ind.shape)
        for i in range(ind.shape[0]):
            for j in range(ind.shape[1]):
                out[i, j] = f(a[i].dot(b[ind[i, j]]), (fm[i] + bm[ind[i, j]]) / 2)
        return out

    fs = scores(x, y, x2y_ind, x2y_mean, y2x_mean)
    bs = scores(y, x, y2x_ind, y2x_mean, x2y_mean)
    fwd_best = x2y_ind[np.arange(len(x)), fs.argmax(1)]
    bwd_best = y2x_ind[np.arange(len(y)), bs.argmax(1)]
    if mode == "forward":
        return {(i, int(j), round(fs[i].max(), 4)) for i, j in enumerate(fwd_best)}
    if mode == "backward":
        return {(int(i), j, round(bs[j].max(), 4)) for j, i in enumerate(bwd_best)}
    if mode == "intersect":
        return {(i, int(j), round(fs[i].max(), 4)) for i, j in enumerate(fwd_best) if bwd_best[j] == i}
    idx = np.stack((np.concatenate((np.arange(len(x)), bwd_best)), np.concatenate((fwd_best, np.arange(len(y))))), 1)
    sc = np.concatenate((fs.max(1), bs.max(1)))
    seen_s, seen_t, out = set(), set(), set()
    for i in np.argsort(-sc, kind="stable"):
        s, t = idx[i]
        if s not in seen_s and t not in seen_t:
            seen_s.add(s), seen_t.add(t)
            out.add((int(s), int(t), round(sc[i], 4)))
    return out


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_and_margin_matches_laser(mode, margin):
    rng = np.random.default_rng(1)
    x = unit(rng.normal(size=(40, 16)))
    y = unit(np.vstack([x[:25] + 0.4 * rng.normal(size=(25, 16)), rng.normal(size=(12, 16))]))
    got = mine_embeddings(x, y, MiningOptions(k=3, margin=margin, mode=mode, shard_size=7))  # several shards both ways
    assert np.all(np.diff(got.scores) <= 0)
    mine = {(int(i), int(j), round(float(s), 4)) for s, i, j in zip(got.scores, got.src_idx, got.tgt_idx)}
    assert mine == laser_mine(x, y, 3, margin, mode)


def test_hand_checked_toy():
    # x0 ~ y1 strongly; x1 ~ y0; x2 has no partner but its nearest target is y0 (a hub)
    x = unit(np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0.05]]))
    y = unit(np.array([[0.1, 1, 0], [1, 0.1, 0]]))
    fwd = mine_embeddings(x, y, MiningOptions(k=1, margin="absolute", mode="forward"))
    assert list(zip(fwd.src_idx, fwd.tgt_idx)) == [(2, 0), (0, 1), (1, 0)] or set(zip(fwd.src_idx, fwd.tgt_idx)) == {
        (0, 1),
        (1, 0),
        (2, 0),
    }
    inter = mine_embeddings(x, y, MiningOptions(k=1, margin="absolute", mode="intersect"))
    assert set(zip(inter.src_idx.tolist(), inter.tgt_idx.tolist())) == {(0, 1), (1, 0)}
    assert mine_embeddings(x, y, MiningOptions(k=1, mode="max")).src_idx.size == 2  # each target used once
    # ratio with k=1: a mutual nearest pair scores exactly 1 / ... = cos / ((cos + cos) / 2) = 1
    ratio = mine_embeddings(x, y, MiningOptions(k=1, margin="ratio", mode="intersect"))
    assert np.allclose(ratio.scores, 1.0)
    assert len(mine_embeddings(x, y, MiningOptions(k=1, margin="absolute", threshold=0.999))) == 0


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_exact_knn_shards_and_memmap_match_faiss(tmp_path, precision):
    import faiss

    rng = np.random.default_rng(0)
    x, y = unit(rng.normal(size=(300, 32))), unit(rng.normal(size=(170, 32)))
    np.save(tmp_path / "x.npy", x)
    options = MiningOptions(k=5, shard_size=64, db_shard_size=50, precision=precision)
    fwd, bwd = knn_both_ways(tmp_path / "x.npy", y, options)
    d, i = faiss.knn(x, y, 5, metric=faiss.METRIC_INNER_PRODUCT)
    assert np.array_equal(fwd.ids, i) and np.allclose(fwd.sims, d, atol=1e-5)
    d, i = faiss.knn(y, x, 5, metric=faiss.METRIC_INNER_PRODUCT)
    assert np.array_equal(bwd.ids, i) and np.allclose(bwd.sims, d, atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_exact_knn_with_many_query_shards_matches_faiss(monkeypatch, precision):
    """Past the first query shards the backward heaps are full and only entries above their k-th best
    are gathered (no transpose): the result must still equal FAISS's own exact search."""
    import faiss

    import mlembed.knn as knn

    rng = np.random.default_rng(1)
    x, y = unit(rng.normal(size=(3000, 16))), unit(rng.normal(size=(1200, 16)))
    transposed = []
    real = np.ascontiguousarray
    monkeypatch.setattr(
        knn.np, "ascontiguousarray", lambda a, *args, **kw: transposed.append(a.shape) or real(a, *args, **kw)
    )
    fwd, bwd = knn_both_ways(x, y, MiningOptions(k=4, shard_size=200, db_shard_size=400, precision=precision))
    monkeypatch.undo()
    blocks = transposed.count((400, 200))  # block.T of a 200-query x 400-row block
    assert 0 < blocks < (3000 // 200) * 3 // 2  # most of the 45 blocks took the gathered path
    d, i = faiss.knn(x, y, 4, metric=faiss.METRIC_INNER_PRODUCT)
    assert np.array_equal(fwd.ids, i) and np.allclose(fwd.sims, d, atol=1e-5)
    d, i = faiss.knn(y, x, 4, metric=faiss.METRIC_INNER_PRODUCT)
    assert np.array_equal(bwd.ids, i) and np.allclose(bwd.sims, d, atol=1e-5)


def test_knn_scores_are_the_same_bits_whatever_the_shards_and_threads(tmp_path):
    """A Ray task (one thread, its own shard) and one process (two threads, other shards) score alike: the
    similarities are rescored canonically, so mining's margins and tie orders cannot depend on BLAS."""
    import faiss

    rng = np.random.default_rng(2)
    x, y = unit(rng.normal(size=(2000, 384))), unit(rng.normal(size=(1500, 384)))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    threads = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        sharded = MiningOptions(k=4, shard_size=333, db_shard_size=256)
        one = knn_both_ways(tmp_path / "x.npy", tmp_path / "y.npy", sharded)
        faiss.omp_set_num_threads(2)
        other = knn_both_ways(x, y, MiningOptions(k=4))
        settings = [MiningOptions(k=4, index="IVF16,Flat", nprobe=16, shard_size=s) for s in (700, 2000)]
        ivf = [knn_both_ways(x, y, options) for options in settings]
    finally:
        faiss.omp_set_num_threads(threads)
    for a, b, (queries, db) in zip(one, other, ((x, y), (y, x))):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.sims, b.sims)
        exact = np.einsum("ij,ij->i", np.float64(queries).repeat(4, axis=0), np.float64(db)[a.ids.ravel()])
        assert np.array_equal(a.sims.ravel(), exact.astype(np.float32))
    for a, b in zip(*ivf):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.sims, b.sims)


def test_int8_candidates_are_returned_in_exact_order():
    """Ten targets within 1e-4 of each other in cosine: int8 scores (steps of ~1e-3) cannot order them, the
    exact rescoring of the kept candidates must, and the similarities are the float64 dot products."""
    from mlembed.knn import block_scales, score_block

    rng = np.random.default_rng(3)
    q = unit(rng.normal(size=(1, 64)))
    noise = rng.normal(size=(10, 64))
    noise = unit(noise - (noise @ q.T) * q)  # unit vectors orthogonal to q
    cos = 0.8 + 1e-5 * rng.permutation(10)[:, None]  # cosines 0.8 .. 0.80009 in shuffled order
    close = cos * q + np.sqrt(1 - cos**2) * noise
    y = np.vstack([close, unit(rng.normal(size=(200, 64)))])
    exact = (np.float64(q) @ np.float64(y).T).ravel()
    int8 = score_block(q, y, block_scales(q, y, "int8")).ravel()
    assert not np.array_equal(np.argsort(-int8[:10], kind="stable"), np.argsort(-exact[:10], kind="stable"))
    fwd, _ = knn_both_ways(q, y, MiningOptions(k=4, precision="int8"))
    assert fwd.ids[0].tolist() == np.argsort(-exact)[:4].tolist()
    assert np.array_equal(fwd.sims[0], np.sort(exact)[::-1][:4].astype(np.float32))
    with pytest.raises(ValueError, match="precision must be one of int8, fp32, not 'bf16'"):
        knn_both_ways(q, y, MiningOptions(k=4, precision="bf16"))


def test_int8_precision_is_refused_where_the_search_would_not_use_it(tmp_path):
    """An approximate index scores with its own codes: --knn-precision int8 there is an error, given before any
    encoding, not an option silently ignored."""
    from mlembed.mine import mine_files

    rng = np.random.default_rng(5)
    x, y = unit(rng.normal(size=(50, 16))), unit(rng.normal(size=(40, 16)))
    with pytest.raises(ValueError, match="precision 'int8' applies to the exact search .* not to index 'ivf'"):
        knn_both_ways(x, y, MiningOptions(k=4, index="ivf", precision="int8"))
    src, tgt = tmp_path / "a.txt", tmp_path / "b.txt"
    src.write_text("one\ntwo\n")
    tgt.write_text("eins\nzwei\n")
    with pytest.raises(ValueError, match="not to index 'ivfsq'"):
        mine_files(src, tgt, tmp_path / "out.tsv", "no-such-model", MiningOptions(index="ivfsq", precision="int8"))
    assert not (tmp_path / "out.tsv").exists()


def test_resume_refuses_another_knn_precision(tmp_path):
    from mlembed.files import DataError

    rng = np.random.default_rng(4)
    x, y = unit(rng.normal(size=(100, 16))), unit(rng.normal(size=(80, 16)))
    knn_both_ways(x, y, MiningOptions(k=4, workdir=tmp_path / "knn", precision="fp32"))
    with pytest.raises(DataError, match="precision"):
        knn_both_ways(x, y, MiningOptions(k=4, workdir=tmp_path / "knn", resume=True, precision="int8"))


def test_shard_sizes_follow_budget_not_n():
    small = shard_sizes(1_000_000, 1_000_000, 384, 4, 1 << 30)
    assert small == shard_sizes(300_000, 300_000, 384, 4, 1 << 30)
    assert shard_sizes(1_000_000, 1_000_000, 384, 4, 4 << 30)[0] > small[0]
    with pytest.raises(ValueError, match="too small"):
        shard_sizes(10_000_000, 10_000_000, 384, 4, 300 << 20)


def test_approximate_index_finds_the_pairs():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(20, 32)))
    x = unit(centres[rng.integers(0, 20, 3000)] + 0.15 * rng.normal(size=(3000, 32)))
    y = unit(x + 0.05 * rng.normal(size=x.shape))
    got = mine_embeddings(x, y, MiningOptions(index="ivf", nprobe=8))
    assert np.mean(got.src_idx == got.tgt_idx) > 0.98 and len(got) > 2900


def test_centring_keeps_a_languages_offset_from_choosing_the_ivf_lists(tmp_path):
    # two "languages": the same meanings, each side shifted by its own offset, as real encoders place them
    rng = np.random.default_rng(0)
    meaning = rng.normal(size=(3000, 32))
    x = unit(meaning + 0.5 * rng.normal(size=32) + 0.3 * rng.normal(size=meaning.shape))
    y = unit(meaning + 0.5 * rng.normal(size=32) + 0.3 * rng.normal(size=meaning.shape))
    exact, _ = knn_both_ways(x, y, MiningOptions(k=4))
    assert np.mean(exact.ids[:, 0] == np.arange(3000)) > 0.97  # the translation is the nearest neighbour
    found = {}
    for centre in (False, True):
        options = MiningOptions(k=4, index="ivf", nprobe=2, centre=centre, workdir=tmp_path / str(centre))
        fwd, bwd = knn_both_ways(x, y, options)
        found[centre] = [np.mean(nn.ids[:, 0] == np.arange(3000)) for nn in (fwd, bwd)]
        assert np.all(np.diff(fwd.sims, axis=1) <= 0)  # rescored cosines, best first
    assert min(found[True]) > 0.8, found  # centred: the offset no longer steers which 2 of 64 lists are probed
    assert min(found[True]) > max(found[False]) + 0.15, found
    with pytest.raises(DataError, match="different inputs or settings"):  # a resume with the other setting
        knn_both_ways(x, y, MiningOptions(k=4, index="ivf", nprobe=2, workdir=tmp_path / "True", resume=True))


def test_calibration_and_best_threshold():
    rng = np.random.default_rng(0)
    x = unit(rng.normal(size=(300, 32)))
    y = unit(x + 0.05 * rng.normal(size=x.shape))
    choice = calibrate_threshold(x, y)
    assert choice.f1 > 0.95 and 1.0 < choice.threshold < 2.0
    pairs = mine_embeddings(x, y, MiningOptions(mode="forward"))
    assert best_threshold(pairs, set()).f1 == 0.0


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_mine_files_dedupes_and_writes_sorted_tsv(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    src = _write(tmp_path / "src.txt", [f"source {i}" for i in range(n)] + ["source 3", ""])
    tgt = _write(tmp_path / "tgt.txt", [f"target {i}" for i in range(n)] + ["target 5"])
    x = unit(rng.normal(size=(n, 24)))
    y = unit(x + 0.05 * rng.normal(size=x.shape))
    np.save(tmp_path / "x.npy", np.vstack([x, x[3], x[0]]))  # rows for the duplicate and the empty line
    np.save(tmp_path / "y.npy", np.vstack([y, y[5]]))
    out = tmp_path / "out.tsv"
    count, thr = mine_files(
        src,
        tgt,
        out,
        options=MiningOptions(threshold=1.0),
        src_embeddings=tmp_path / "x.npy",
        tgt_embeddings=tmp_path / "y.npy",
        show_progress=False,
    )
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert count == len(rows) == n and thr == 1.0
    assert all(r[1].split()[1] == r[2].split()[1] for r in rows)  # source i <-> target i
    scores = [float(r[0]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert not (tmp_path / "out.tsv.work").exists()


def _mine_cmd(tmp: Path, out: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlembed",
        "mine",
        "--src",
        str(tmp / "src.txt"),
        "--tgt",
        str(tmp / "tgt.txt"),
        "--src-embeddings",
        str(tmp / "x.npy"),
        "--tgt-embeddings",
        str(tmp / "y.npy"),
        "--output",
        str(tmp / out),
        "--threshold",
        "1.0",
        "--shard-size",
        "250",
        "--workdir",
        str(tmp / f"{out}.work"),
        *extra,
    ]


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_output(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 12_000, 128
    x = unit(rng.normal(size=(n, d)))
    y = unit(np.vstack([x[: n // 2] + 0.05 * rng.normal(size=(n // 2, d)), rng.normal(size=(n // 2, d))]))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    _write(tmp_path / "src.txt", [f"s{i}" for i in range(n)])
    _write(tmp_path / "tgt.txt", [f"t{i}" for i in range(n)])
    env = {**os.environ, "TQDM_DISABLE": "1"}
    subprocess.run(_mine_cmd(tmp_path, "full.tsv"), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(
        _mine_cmd(tmp_path, "killed.tsv"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    manifest = tmp_path / "killed.tsv.work" / "knn" / "manifest.json"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(json.loads(manifest.read_text())["done"].get("exact", {})) >= 3:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "mining finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads(manifest.read_text())["done"]["exact"])
    assert 3 <= done < n // 250 and not (tmp_path / "killed.tsv").exists()

    again = subprocess.run(_mine_cmd(tmp_path, "killed.tsv"), env=env, capture_output=True, text=True)
    assert (
        again.returncode == 2 and "unfinished run: pass --resume" in again.stderr and "Traceback" not in again.stderr
    )  # refuses to silently restart
    subprocess.run(_mine_cmd(tmp_path, "killed.tsv", "--resume"), check=True, env=env, capture_output=True)
    assert (tmp_path / "killed.tsv").read_bytes() == (tmp_path / "full.tsv").read_bytes()
    assert len((tmp_path / "full.tsv").read_text().splitlines()) > n // 3


def test_mined_sentences_with_tabs_stay_three_columns_and_edited_inputs_are_re_encoded(tmp_path, teacher):
    from mlembed.mine import _embed_unique
    from mlembed.models import fingerprint
    from mlembed.textstore import unique_line_ids

    src, tgt = tmp_path / "en.txt", tmp_path / "de.txt"
    src.write_text("The cat\tsleeps.\nStocks fell.\n", encoding="utf-8")
    tgt.write_text("Die Aktien fielen.\nDie Katze schläft.\n", encoding="utf-8")
    n, _ = mine_files(src, tgt, tmp_path / "out.tsv", teacher, MiningOptions(threshold=1.0), show_progress=False)
    rows = (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()
    assert n == 2 and all(len(r.split("\t")) == 3 for r in rows) and any("The cat sleeps." in r for r in rows)

    # a resumed run stamps its inputs by content: the same path with other lines is encoded again
    ids, lines = unique_line_ids(src)
    out = tmp_path / "work" / "src.npy"
    out.parent.mkdir()
    first = np.load(_embed_unique(src, ids, lines, out, teacher, None, fingerprint(teacher), False)).copy()
    src.write_text("A completely different line.\nAnd another one.\n", encoding="utf-8")
    second = np.load(_embed_unique(src, ids, lines, out, teacher, None, fingerprint(teacher), False))
    assert first.shape == second.shape and not np.allclose(first, second)


def test_mine_judges_auto_by_mining_f1_and_times_every_stage(tmp_path, monkeypatch, capsys):
    """``mlembed mine --backend auto`` asks the probe for the engine that keeps mining F1 (not the vectors'
    cosine), logs the engine it encodes with, and prints the seconds of each stage it ran."""
    import mlembed.backends as backends
    from mlembed.cli import main

    asked = []
    monkeypatch.setattr(backends, "choose_backend", lambda model, precision, task: asked.append(task) or "torch")
    src, tgt = tmp_path / "en.txt", tmp_path / "de.txt"
    src.write_text("The cat sleeps.\nStocks fell.\nThe cat sleeps.\n", encoding="utf-8")
    tgt.write_text("Die Aktien fielen.\nDie Katze schläft.\n", encoding="utf-8")
    out = tmp_path / "out.tsv"
    argv = ["mine", "--src", str(src), "--tgt", str(tgt), "-o", str(out), "--backend", "auto", "--threshold", "1"]
    assert main(argv) == 0
    assert asked == ["mining"]
    printed = capsys.readouterr()
    assert "encoding with minilm-en on torch (--backend auto: judged by mining F1)" in printed.err
    stages = json.loads(printed.out.split("seconds per stage: ")[1])
    assert set(stages) == {"load", "dedupe", "encode", "knn", "margin", "write"}
    assert all(v >= 0 for v in stages.values()) and len(out.read_text().splitlines()) == 2
