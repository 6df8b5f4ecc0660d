"""Beyond one machine, for real: a local Ray cluster (2 CPUs, 127.0.0.1) and torchrun with 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the --ray verbs need Ray (pip install 'ray[data]')")
# .ci/run runs this module again under MLEMBED_PRECISION=fp32 and =bf16: Ray's output equals one process's in both
pytestmark = pytest.mark.precision


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs on 127.0.0.1, stopped with the module.

    Its workers and this process encode at one precision, the one ``auto`` gives this process (CI runs the
    module under fp32 and bf16): the environment that says it is inherited by the workers ray.init starts.
    """
    from mlembed.encoding import resolve_precision

    old = os.environ.get("MLEMBED_PRECISION")
    os.environ["MLEMBED_PRECISION"] = resolve_precision("auto")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()
    if old is None:
        del os.environ["MLEMBED_PRECISION"]
    else:
        os.environ["MLEMBED_PRECISION"] = old


def _unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> str:
    topics = ["the weather", "a train", "der Bahnhof", "le marché", "猫", "la musica", "ein Buch", "the sea"]
    lines = [f"Sentence {i} is about {topics[i % len(topics)]}" + "!" * (i % 7) for i in range(430)]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_encode_on_ray_writes_the_rows_of_single_process_encode_and_resumes(cluster, sentences, tmp_path, teacher):
    from mlembed.cluster.encode import encode_ray, read_manifest, shards_to_npy
    from mlembed.encoding import encode_to_npy, read_sentences

    out = tmp_path / "corpus.emb"
    manifest = encode_ray([sentences], out, "minilm-en", shard_size=100, normalize=True, precision="fp32")
    assert [s["rows"] for s in manifest["shards"]] == [[0, 100], [100, 200], [200, 300], [300, 400], [400, 430]]
    assert manifest["shards"][-1]["lines"] == [401, 430] and manifest["count"] == 430
    single = encode_to_npy(
        read_sentences(sentences), tmp_path / "single.npy", teacher, count=430, normalize=True, precision="fp32"
    )
    np.testing.assert_allclose(np.load(shards_to_npy(out, tmp_path / "cat.npy")), np.load(single), atol=1e-5)
    # a rerun skips finished shards; a lost one is encoded again
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npy")}
    (out / "shard-00002.json").unlink()
    encode_ray([sentences], out, "minilm-en", shard_size=100, normalize=True, precision="fp32")
    again = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npy")}
    assert [n for n in stamps if stamps[n] != again[n]] == ["shard-00002.npy"]

    def layout(m: dict) -> list:
        return [(s["file"], s["source"], s["lines"], s["rows"]) for s in m["shards"]]

    assert layout(read_manifest(out)) == layout(manifest)
    with pytest.raises(ValueError, match="holds shards of another encoding"):
        encode_ray([sentences], out, "minilm-en", shard_size=50, normalize=True, precision="fp32")


@pytest.mark.parametrize(("index", "centre"), [("flat", False), ("IVF32,Flat", False), ("IVF32,Flat", True)])
def test_mine_on_ray_finds_the_same_neighbours(cluster, tmp_path, index, centre):
    from mlembed.cluster.knn import knn_both_ways_ray
    from mlembed.knn import MiningOptions, knn_both_ways

    rng = np.random.default_rng(0)
    src, tgt = _unit(rng, 3000, 32), _unit(rng, 2500, 32)
    np.save(tmp_path / "src.npy", src)
    np.save(tmp_path / "tgt.npy", tgt)
    opts = MiningOptions(k=4, index=index, shard_size=700, nprobe=8, centre=centre)
    fwd, bwd = knn_both_ways(tmp_path / "src.npy", tmp_path / "tgt.npy", opts)
    stats: dict = {}
    on_ray = replace(opts, workdir=tmp_path / "knn")
    rfwd, rbwd = knn_both_ways_ray(tmp_path / "src.npy", tmp_path / "tgt.npy", on_ray, stats=stats)
    np.testing.assert_array_equal(rfwd.ids, fwd.ids)
    np.testing.assert_array_equal(rbwd.ids, bwd.ids)
    np.testing.assert_allclose(rbwd.sims, bwd.sims, atol=1e-6)
    assert stats["tasks"] == (5 if index == "flat" else 5 + 4) and stats["worker_peak_rss_mb"] > 0


def test_an_exact_knn_folder_moves_between_ray_and_one_process(cluster, tmp_path, monkeypatch):
    """Shards finished on Ray, then by one process (killed after one shard), then on Ray again: the same
    neighbours as one uninterrupted run, each shard's backward candidates counted once."""
    from mlembed import knn
    from mlembed.cluster.knn import knn_both_ways_ray

    rng = np.random.default_rng(2)
    np.save(tmp_path / "src.npy", _unit(rng, 3000, 32))
    np.save(tmp_path / "tgt.npy", _unit(rng, 2500, 32))
    paths = (tmp_path / "src.npy", tmp_path / "tgt.npy")
    opts = knn.MiningOptions(k=4, shard_size=700, workdir=tmp_path / "knn")
    fwd, bwd = knn.knn_both_ways(*paths, replace(opts, workdir=None))
    knn_both_ways_ray(*paths, opts)
    manifest = tmp_path / "knn" / "manifest.json"
    state = json.loads(manifest.read_text())
    state["done"]["exact"] = {s: f for s, f in state["done"]["exact"].items() if int(s) < 2}  # Ray killed here
    manifest.write_text(json.dumps(state))

    real, calls = knn.exact_shard, []

    def killed_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(knn, "exact_shard", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        knn.knn_both_ways(*paths, replace(opts, resume=True))
    assert sorted(json.loads(manifest.read_text())["done"]["exact"], key=int) == ["0", "1", "2"]
    rfwd, rbwd = knn_both_ways_ray(*paths, replace(opts, resume=True))
    np.testing.assert_array_equal(rfwd.ids, fwd.ids)
    np.testing.assert_array_equal(rbwd.ids, bwd.ids)
    np.testing.assert_allclose(rbwd.sims, bwd.sims, atol=1e-6)


@pytest.mark.slow
def test_mine_on_ray_survives_a_killed_worker(cluster, tmp_path):
    """A worker process is SIGKILLed while it runs a shard: Ray retries the task, the pairs are the same."""
    import psutil

    from mlembed.mine import MiningOptions, mine_embeddings

    rng = np.random.default_rng(1)
    src = _unit(rng, 40_000, 128)
    tgt = src[rng.permutation(len(src))] + 0.05 * _unit(rng, len(src), 128)
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True)
    np.save(tmp_path / "src.npy", src)
    np.save(tmp_path / "tgt.npy", tgt)
    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for proc in psutil.process_iter(["pid", "cmdline"]):
                if "ray::_exact_shard" in " ".join(proc.info["cmdline"] or []):
                    proc.kill()
                    killed.append(proc.info["pid"])
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one)
    killer.start()
    opts = MiningOptions(k=4, threshold=1.0, shard_size=4000)
    on_ray = replace(opts, workdir=tmp_path / "w", ray=True)
    pairs = mine_embeddings(str(tmp_path / "src.npy"), str(tmp_path / "tgt.npy"), on_ray)
    killer.join()
    assert killed, "no shard task was caught running"
    expected = mine_embeddings(tmp_path / "src.npy", tmp_path / "tgt.npy", opts)
    np.testing.assert_array_equal(pairs.src_idx, expected.src_idx)
    np.testing.assert_array_equal(pairs.tgt_idx, expected.tgt_idx)
    assert len(pairs) > 30_000


@pytest.mark.slow
def test_mine_files_on_ray_writes_the_single_process_output(cluster, sentences, tmp_path):
    """The user's path: distinct lines encoded by Ray actors, k-NN as Ray tasks, the same TSV as without Ray."""
    from mlembed.mine import MiningOptions, mine_files

    lines = open(sentences, encoding="utf-8").read().splitlines()
    other = tmp_path / "other.txt"
    other.write_text("\n".join(reversed(lines + lines[:50])) + "\n", encoding="utf-8")  # duplicates too
    opts = dict(model="minilm-en", show_progress=False)
    on_ray = mine_files(sentences, other, tmp_path / "ray.tsv", options=MiningOptions(threshold=1.0, ray=True), **opts)
    single = mine_files(sentences, other, tmp_path / "single.tsv", options=MiningOptions(threshold=1.0), **opts)
    assert on_ray == single and single[0] > 100
    assert (tmp_path / "ray.tsv").read_bytes() == (tmp_path / "single.tsv").read_bytes()


@pytest.mark.slow
def test_index_on_ray_answers_as_the_single_process_index(cluster, sentences, tmp_path, teacher, capfd):
    from mlembed.encoding import encode
    from mlembed.index import IndexSpec, SentenceIndex

    spec = IndexSpec(kind="IVF8,Flat", nprobe=3)
    single = SentenceIndex.build(sentences, tmp_path / "single", teacher, spec, show_progress=False)
    built = SentenceIndex.build(sentences, tmp_path / "ray", "minilm-en", spec, ray=True, show_progress=False)
    assert built.meta["ondisk"] and (tmp_path / "ray" / "lists.ivfdata").exists()
    (tmp_path / "ray").rename(tmp_path / "moved")  # the lists file is found beside the index wherever it goes
    capfd.readouterr()
    moved = SentenceIndex.load(tmp_path / "moved")
    assert capfd.readouterr().out == "", "FAISS's note on the moved lists file reached stdout"
    queries = encode(["a train to the sea", "Das Buch", "猫"], teacher, normalize=True)
    d1, i1 = moved.search_vectors(queries, 5)
    d2, i2 = single.search_vectors(queries, 5)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    with pytest.raises(ValueError, match="--ray builds IVF indexes"):
        SentenceIndex.build(
            sentences, tmp_path / "hnsw", "minilm-en", IndexSpec(kind="hnsw"), ray=True, show_progress=False
        )


@pytest.mark.slow
def test_torchrun_distill_with_two_processes_saves_one_model(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from test_distill import DE, ZH

    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "mlembed", "distill"]
    for lang, rows in (("deu", DE), ("cmn", ZH)):
        path = tmp_path / f"pairs.eng-{lang}.tsv"
        path.write_text(f"eng\t{lang}\n" + "".join(f"{en}\t{xx}\n" for en, xx in rows), encoding="utf-8")
        args += ["--data", f"tsv:{path}"]
    # a budget the 4 steps stay inside: the ranks agree on the time each step (the rate follows it)
    args += ["--output", str(tmp_path / "student"), "--max-minutes", "5", "--batch-size", "4", "--max-steps", "4"]
    args += ["--save-steps", "2", "--eval-pairs", "6", "--new-tokens", "300", "--max-pairs", "0", "--no-table"]
    env = dict(os.environ, MLEMBED_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    done = subprocess.run(args + ["--student", "auto"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved ") == 1, "only rank 0 reports"
    saved = json.loads((tmp_path / "student" / "mlembed.json").read_text())
    assert saved["result"]["steps"] == 4
    # rank 0 alone filled the teacher cache: each English sentence encoded once
    assert saved["plan"]["teacher_embeddings_computed"] == saved["plan"]["train_pairs"] // 2
    from mlembed.models import load_model

    assert load_model(str(tmp_path / "student")).encode(["Guten Morgen"]).shape == (1, 384)
    assert not list(tmp_path.glob(".student*")), "a staging folder was left behind"
