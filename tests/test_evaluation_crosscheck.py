"""Our figures equal sentence-transformers' own evaluators on the same model and data; the CLI end to end."""

from __future__ import annotations

import json
import warnings

import pytest

from mlembed.evaluation import EmbeddingCache, parse_task

N = 200  # Tatoeba pairs
N_STS = 120  # STS rows per pair (each is encoded twice: by us and by sentence-transformers)


@pytest.fixture(scope="module")
def cache(teacher):
    return EmbeddingCache(teacher, show_progress=False, name="teacher")


@pytest.mark.precision
def test_tatoeba_accuracy_equals_translation_evaluator(shared_data, teacher, cache, numerics):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.evaluation import TranslationEvaluator
    task = parse_task(f"tatoeba:{shared_data / 'tatoeba'}:deu", limit=N)
    ours = task.evaluate(cache).scores["deu"]
    (group,) = task.groups()
    theirs = TranslationEvaluator(group.src, group.tgt, batch_size=64, name="deu")(teacher)
    src2trg = next(v for k, v in theirs.items() if k.endswith("src2trg_accuracy"))
    trg2src = next(v for k, v in theirs.items() if k.endswith("trg2src_accuracy"))
    assert ours["xx2en"] == pytest.approx(src2trg * 100, abs=numerics.score_abs)
    assert ours["en2xx"] == pytest.approx(trg2src * 100, abs=numerics.score_abs)
    assert ours["accuracy"] == pytest.approx((src2trg + trg2src) * 50, abs=numerics.score_abs)
    assert 0 < ours["accuracy"] < 60  # the English teacher does not know German well


@pytest.mark.slow
@pytest.mark.precision
def test_sts_equals_embedding_similarity_evaluator(shared_data, teacher, cache, numerics):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator, SimilarityFunction
    task = parse_task(f"sts:{shared_data / 'stsb-multi-mt'}:en,en-de:test")
    data = task.data()
    for key in ("en", "en-de"):
        pairs = data[key]
        pairs.sentence1, pairs.sentence2, pairs.scores = (
            pairs.sentence1[:N_STS],
            pairs.sentence2[:N_STS],
            pairs.scores[:N_STS],
        )
    ours = task.evaluate(cache).scores
    for key in ("en", "en-de"):
        pairs = data[key]
        ev = EmbeddingSimilarityEvaluator(
            pairs.sentence1,
            pairs.sentence2,
            [s / 5 for s in pairs.scores],
            main_similarity=SimilarityFunction.COSINE,
            similarity_fn_names=["cosine"],
            name=key,
        )
        theirs = ev(teacher)
        spearman = next(v for k, v in theirs.items() if k.endswith("spearman_cosine"))
        pearson = next(v for k, v in theirs.items() if k.endswith("pearson_cosine"))
        assert ours[key]["spearman"] == pytest.approx(spearman * 100, abs=numerics.score_abs)
        assert ours[key]["pearson"] == pytest.approx(pearson * 100, abs=numerics.score_abs)
    assert ours["en"]["spearman"] > ours["en-de"]["spearman"] + 20  # monolingual English far better


def test_cli_evaluate_writes_json_md_png(shared_data, tmp_path, capsys):
    from mlembed.cli import main

    sts = tmp_path / "sts"
    sts.mkdir()
    (sts / "stsb-en-test.csv").write_text(
        "A man is playing a guitar.,A man plays the guitar.,4.8\n"
        "A woman is slicing an onion.,A man is driving a car.,0.2\n"
        "A dog runs in the park.,A dog is running on grass.,3.9\n"
        '"Two kids, smiling.",Children are laughing.,3.1\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--model",
            "teacher",
            "--task",
            f"tatoeba:{shared_data / 'tatoeba'}:deu,fra",
            "--task",
            f"sts:{sts}:en",
            "--limit",
            "30",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    langs = {(e["task"], e["language"]) for e in data["results"]}
    assert langs == {("tatoeba", "deu"), ("tatoeba", "fra"), ("tatoeba", "mean"), ("sts", "en"), ("sts", "mean")}
    assert data["command"].startswith("mlembed evaluate --model teacher")
    md = (out / "results.md").read_text()
    assert "| model | deu | fra | mean |" in md and "| teacher |" in md
    assert len(list(out.glob("*.png"))) == 2
    assert "mean" in capsys.readouterr().out
    code = main(["evaluate", "--model", "teacher", "--task", f"sts:{tmp_path / 'nowhere'}:en", "--output", str(out)])
    assert code == 2 and "no such STS file or folder" in capsys.readouterr().err


@pytest.mark.slow
def test_distill_dev_figures_equal_sentence_transformers_evaluators(shared_data, teacher):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.evaluation import MSEEvaluator, TranslationEvaluator

    from mlembed.distill.dev import dev_evaluator, run_dev

    (group,) = parse_task(f"tatoeba:{shared_data / 'tatoeba'}:fra", limit=60).groups()
    ours = run_dev(dev_evaluator([{"src": s, "tgt": t} for s, t in zip(group.tgt, group.src)], teacher), teacher)
    mse = MSEEvaluator(group.tgt, group.src, teacher_model=teacher, name="d", write_csv=False)(teacher)
    trans = TranslationEvaluator(group.tgt, group.src, name="d", write_csv=False)(teacher)
    assert ours["mse_x100"] == pytest.approx(-mse["d_negative_mse"], abs=1e-4)
    assert ours["src2trg_accuracy"] == pytest.approx(100 * trans["d_src2trg_accuracy"], abs=0.01)
    assert ours["trg2src_accuracy"] == pytest.approx(100 * trans["d_trg2src_accuracy"], abs=0.01)
    assert 0 < ours["mse_x100"] and 0 < ours["mean_accuracy"] < 100
