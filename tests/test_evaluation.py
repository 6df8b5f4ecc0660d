"""Evaluation metrics on hand-computed toy embeddings, the readers on small files, and bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mlembed.evaluation import EmbeddingCache, TaskResult, evaluate, parse_task
from mlembed.evaluation.bucc import BuccTask, read_bucc_split
from mlembed.evaluation.mining import (
    MiningTask,
    at_threshold,
    best_threshold,
    select_distractors,
)
from mlembed.evaluation.mse import mse_x100
from mlembed.evaluation.report import markdown, result_entries, write_report
from mlembed.evaluation.retrieval import RetrievalTask, retrieval_accuracy, top1
from mlembed.evaluation.sts import (
    STSTask,
    read_sts17,
    read_sts_benchmark,
    read_stsb_csv,
    read_stsb_multi_mt,
    sts_correlation,
)
from mlembed.files import DataError


class MeaningEncoder:
    """A fake model: ``"xx:N ..."`` and ``"en:N ..."`` map to the same random direction N (plus a little
    language-specific noise), so translations are nearest neighbours and everything else is far."""

    def __init__(self, dim: int = 32, noise: float = 0.05):
        self.dim, self.noise = dim, noise
        self.calls: list[int] = []

    def encode(self, sentences, **_):
        self.calls.append(len(sentences))
        out = []
        for s in sentences:
            lang, meaning = s.split(" ")[0].split(":")
            base = np.random.default_rng(int(meaning)).normal(size=self.dim)
            seed = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little")  # same every run
            jitter = np.random.default_rng(seed).normal(size=self.dim)
            out.append(base + self.noise * jitter)
        return np.array(out, dtype=np.float32)


# --- retrieval -------------------------------------------------------------------------------------


def _angles(*degrees):
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def test_retrieval_accuracy_both_directions_by_hand():
    # unit vectors at angles; cosine = cos(angle difference), so nearest = smallest difference.
    # src -> tgt: 0->0 ok; 30->50 (20 < 25, 30) ok; 60->55 (5) ok                  3/3
    # tgt -> src: 0->0 ok; 50->60 (10 < 20) WRONG; 55->60 (5) ok                   2/3
    src, tgt = _angles(0, 30, 60), _angles(0, 50, 55)
    acc = retrieval_accuracy(src, tgt)
    assert acc["src2tgt"] == pytest.approx(100.0)
    assert acc["tgt2src"] == pytest.approx(200 / 3)
    assert acc["accuracy"] == pytest.approx(250 / 3)
    back = retrieval_accuracy(tgt, src)  # swapping the sides swaps the directions
    assert back["src2tgt"] == acc["tgt2src"] and back["tgt2src"] == acc["src2tgt"]
    # scale does not matter (cosine)
    assert retrieval_accuracy(src * 7, tgt * 0.1) == acc


def test_ties_go_to_the_lowest_index_like_argmax():
    keys = np.array([[0, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float32)
    queries = np.array([[1, 0], [0, 1]], dtype=np.float32)
    assert top1(queries, keys).tolist() == [1, 0]
    # a duplicated target sentence: the pair at the later index can never be found (as in ST's evaluator)
    acc = retrieval_accuracy(np.array([[1, 0], [1, 0]], np.float32), np.array([[1, 0], [1, 0]], np.float32))
    assert acc == {"src2tgt": 50.0, "tgt2src": 50.0, "accuracy": 50.0}


def test_margin_retrieval_fixes_a_hub():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32) + 1.0  # a shared offset: the vectors cluster
    y = x + 0.8 * rng.normal(size=x.shape).astype(np.float32)
    y[0] = x.mean(axis=0)  # target 0 sits in the middle of everything: the nearest neighbour of many queries
    cos = retrieval_accuracy(x, y)
    marg = retrieval_accuracy(x, y, margin=True)
    assert cos["src2tgt"] == pytest.approx(62.5) and marg["src2tgt"] == pytest.approx(72.5)  # 4 more queries found


def test_unequal_pair_counts_rejected():
    with pytest.raises(ValueError, match="same positive number"):
        retrieval_accuracy(np.ones((2, 3)), np.ones((3, 3)))


# --- mse, sts correlation, thresholds -------------------------------------------------------------


def test_mse_matches_formula():
    t = np.array([[1.0, 2.0], [0.0, 1.0]])
    s = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert mse_x100(t, s) == pytest.approx(((1 + 1) / 4) * 100)  # squared errors 0,1,1,0
    with pytest.raises(ValueError, match="dimension"):
        mse_x100(np.ones((2, 3)), np.ones((2, 4)))


def test_spearman_by_hand():
    # cosines 1, 0.8, 0.6, 0 (rank 4,3,2,1); gold ranks 4,2,3,1 -> d = 0,1,1,0 -> rho = 1 - 6*2/(4*15) = 0.8
    a = np.array([[1, 0]] * 4, dtype=np.float32)
    b = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]], dtype=np.float32)
    r = sts_correlation(a, b, [5.0, 2.0, 3.0, 0.0])
    assert r["spearman"] == pytest.approx(80.0)
    assert r["pearson"] == pytest.approx(100 * np.corrcoef([1, 0.8, 0.6, 0], [5, 2, 3, 0])[0, 1])


def test_f1_threshold_by_hand():
    scores = np.array([1.5, 1.4, 1.3, 1.2, 1.1])
    correct = np.array([1, 1, 0, 1, 0], dtype=bool)
    best = best_threshold(scores, correct, n_gold=4)
    # cut at 1.2: tp 3, predicted 4, gold 4 -> P 75, R 75, F1 75 (better than 2/2: F1 66.7)
    assert (best.threshold, best.precision, best.recall, best.f1) == (1.2, 75.0, 75.0, 75.0)
    op = at_threshold(scores, correct, 4, 1.35)
    assert (op.precision, op.recall) == (100.0, 50.0) and op.f1 == pytest.approx(200 / 3)
    # equal scores are kept or dropped together
    tied = best_threshold(np.array([1.0, 1.0, 0.5]), np.array([1, 0, 1], bool), 2)
    assert tied.threshold == 0.5 and tied.f1 == pytest.approx(100 * 4 / 5)


# --- STS readers ------------------------------------------------------------------------------------


def _stsb(tmp_path, lang, rows, split="test"):
    (tmp_path / f"stsb-{lang}-{split}.csv").write_text("".join(rows), encoding="utf-8")


def test_stsb_multi_mt_cross_lingual_pairs_and_quoting(tmp_path):
    _stsb(tmp_path, "en", ['"A man, a plan.","He said ""hi"".",4.0\n', "A cat.,A dog.,1.5\n"])
    _stsb(tmp_path, "de", ['"Ein Mann, ein Plan.","Er sagte ""hallo"".",4.0\n', "Eine Katze.,Ein Hund.,1.5\n"])
    mono = read_stsb_multi_mt(tmp_path, "en")
    assert mono.sentence2[0] == 'He said "hi".' and mono.scores == [4.0, 1.5]
    cross = read_stsb_multi_mt(tmp_path, "en-de")
    assert cross.sentence1 == ["A man, a plan.", "A cat."]
    assert cross.sentence2 == ['Er sagte "hallo".', "Ein Hund."]


def test_stsb_non_numeric_score_names_file_and_line(tmp_path):
    _stsb(tmp_path, "en", ["A.,B.,1.0\n", '"Multi\nline",C.,2.0\n', "D.,E.,high\n"])
    with pytest.raises(DataError, match=r"stsb-en-test\.csv:4: score 'high' is not a number"):
        read_stsb_csv(tmp_path / "stsb-en-test.csv")


def test_stsb_unaligned_files_rejected(tmp_path):
    _stsb(tmp_path, "en", ["A.,B.,1.0\n", "C.,D.,2.0\n"])
    _stsb(tmp_path, "de", ["A.,B.,1.0\n"])
    with pytest.raises(DataError, match="not aligned"):
        read_stsb_multi_mt(tmp_path, "en-de")


def test_sts_benchmark_tsv(tmp_path):
    p = tmp_path / "sts-test.csv"
    p.write_text(
        "main-captions\tMSRvid\t2012test\t0001\t5.000\tA girl is styling her hair.\tA girl is brushing her hair.\n"
        'main-news\theadlines\t2015\t0002\t0.500\tA "quoted" one.\tAnother.\tsrc1\tsrc2\n',
        encoding="utf-8",
    )
    pairs = read_sts_benchmark(p)
    assert pairs.scores == [5.0, 0.5] and pairs.sentence1[1] == 'A "quoted" one.'
    p.write_text("main\tx\t2012\t1\t2.0\tonly one sentence\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"sts-test\.csv:1: expected >= 7"):
        read_sts_benchmark(p)


def test_semeval_2017_and_extended_layouts(tmp_path):
    (tmp_path / "STS.input.track5.en-en.txt").write_text("A cat.\tA dog.\nHi.\tHello.\nX.\tY.\n")
    (tmp_path / "STS.gs.track5.en-en.txt").write_text("1.2\n4.8\n\n")  # third line unscored
    (tmp_path / "STS.input.track4a.es-en.txt").write_text("Un gato.\tA cat.\n")
    (tmp_path / "STS.gs.track4a.es-en.txt").write_text("5\n")
    (tmp_path / "STS.en-de.txt").write_text("A cat.\tEine Katze.\t5.0\nA car.\tEin Hund.\t0.4\n")
    tracks = read_sts17(tmp_path)
    assert sorted(tracks) == ["en-de", "en-en", "es-en"]
    assert tracks["en-en"].scores == [1.2, 4.8] and tracks["en-de"].sentence2 == ["Eine Katze.", "Ein Hund."]


def test_semeval_unequal_line_counts(tmp_path):
    (tmp_path / "STS.input.track5.en-en.txt").write_text("A.\tB.\nC.\tD.\n")
    (tmp_path / "STS.gs.track5.en-en.txt").write_text("1.0\n")
    with pytest.raises(
        DataError, match=r"STS\.input\.track5\.en-en\.txt: 2 lines but .*STS\.gs\.track5\.en-en\.txt has 1"
    ):
        read_sts17(tmp_path)


def test_sts_task_on_fake_model(tmp_path):
    # gold follows the meaning ids: same meaning 5, different 0 -> perfect Spearman
    _stsb(tmp_path, "en", ["en:1 a,en:1 b,5\n", "en:2 a,en:3 b,0\n", "en:4 a,en:4 c,5\n", "en:5 a,en:6 b,0\n"])
    _stsb(tmp_path, "de", ["de:1 a,de:1 b,5\n", "de:2 a,de:3 b,0\n", "de:4 a,de:4 c,5\n", "de:5 a,de:6 b,0\n"])
    task = parse_task(f"sts:{tmp_path}:en,en-de:test")
    assert isinstance(task, STSTask)
    result = task.evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))
    assert set(result.scores) == {"en", "en-de"}
    # the two same-meaning pairs rank above the two others, whatever the order inside each group: exactly
    assert result.scores["en-de"]["spearman"] == pytest.approx(
        100 * np.corrcoef([3.5, 1.5, 3.5, 1.5], [4, 2, 3, 1])[0, 1]
    )
    assert result.main_metric == "spearman" and result.scores["en"]["spearman"] > 80


# --- tasks, cache and reports -----------------------------------------------------------------------


def _tatoeba(tmp_path, n=6):
    d = tmp_path / "tatoeba"
    d.mkdir()
    (d / "tatoeba.deu-eng.deu").write_text("".join(f"de:{i} satz\n" for i in range(n)))
    (d / "tatoeba.deu-eng.eng").write_text("".join(f"en:{i} sentence\n" for i in range(n)))
    (d / "tatoeba.fra-eng.fra").write_text("".join(f"fr:{i} phrase\n" for i in range(n)))
    # French line i means i, its English line means i + 1: every French pair is misaligned
    (d / "tatoeba.fra-eng.eng").write_text("".join(f"en:{(i + 1) % n} sentence\n" for i in range(n)))
    return d


def test_tatoeba_task_keys_and_cache(tmp_path):
    d = _tatoeba(tmp_path)
    model = MeaningEncoder()
    cache = EmbeddingCache(model, show_progress=False)
    result = RetrievalTask(f"tatoeba:{d}", name="tatoeba").evaluate(cache)
    assert list(result.scores) == ["deu", "fra"]
    assert result.scores["deu"] == {"xx2en": 100.0, "en2xx": 100.0, "accuracy": 100.0}
    assert result.scores["fra"] == {"xx2en": 0.0, "en2xx": 0.0, "accuracy": 0.0} and result.main_score == 50.0
    encoded = sum(model.calls)
    RetrievalTask(f"tatoeba:{d}:deu", name="tatoeba").evaluate(cache)
    assert sum(model.calls) == encoded == 18  # 6 de + 6 fr + 6 en (shared); the second task encodes nothing


def test_tatoeba_missing_side_and_unequal_lines(tmp_path):
    d = _tatoeba(tmp_path)
    (d / "tatoeba.fra-eng.eng").unlink()
    with pytest.raises(DataError, match=r"tatoeba\.fra-eng\.eng"):
        parse_task(f"tatoeba:{d}").evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))
    (d / "tatoeba.fra-eng.eng").write_text("en:1 one\n")
    with pytest.raises(DataError, match=r"tatoeba\.fra-eng\.fra:2: line counts differ"):
        parse_task(f"tatoeba:{d}:fra").evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))


def test_unknown_task_and_mse_without_teacher():
    with pytest.raises(DataError, match="unknown task"):
        parse_task("nonsense:x")
    with pytest.raises(DataError, match="needs a teacher"):
        parse_task("mse:tsv:x.tsv")


def test_mse_task_teacher_against_student(tmp_path):
    p = tmp_path / "eng-deu.tsv"
    p.write_text("en:1 a\tde:1 a\nen:2 b\tde:2 b\n")
    teacher = EmbeddingCache(MeaningEncoder(noise=0.0), show_progress=False, name="t")
    student = EmbeddingCache(MeaningEncoder(noise=0.5), show_progress=False, name="s")
    task = parse_task(f"mse:tsv:{p}", teacher=teacher)
    assert task.evaluate(teacher).scores["de-en"]["mse"] == pytest.approx(0.0, abs=1e-9)
    assert task.evaluate(student).scores["de-en"]["mse"] > 1.0


def test_report_files(tmp_path):
    d = _tatoeba(tmp_path)
    results = evaluate(
        {"good": MeaningEncoder(noise=0.05), "noisy": MeaningEncoder(noise=3.0)},
        [parse_task(f"tatoeba:{d}")],
        show_progress=False,
    )
    paths = write_report(results, tmp_path / "out", command="mlembed evaluate ...")
    assert [p.name for p in paths][:2] == ["results.json", "results.md"] and paths[2].suffix == ".png"
    data = json.loads(paths[0].read_text())
    rows = {(e["model"], e["language"]): e for e in data["results"]}
    assert len(data["results"]) == 2 * 3  # 2 models x (2 languages + mean)
    assert rows[("good", "deu")]["main_score"] == 100.0 and rows[("good", "mean")]["main_score"] == 50.0
    assert rows[("good", "deu")]["task"] == "tatoeba" and rows[("good", "deu")]["split"] == "test"
    md = paths[1].read_text()
    assert "| model | deu | fra | mean |" in md and "| good | 100.0 | 0.0 | 50.0 |" in md
    assert paths[2].read_bytes()[:4] == b"\x89PNG" and paths[2].stat().st_size > 10_000


def test_markdown_marks_lower_is_better():
    r = TaskResult("mse", "mse:x", "test", "mse", {"de-en": {"mse": 1.5}}, {"lower_is_better": True})
    assert "mse (lower is better)" in markdown([("m", r)])
    assert result_entries([("m", r)])[-1]["language"] == "mean"


# --- mining ---------------------------------------------------------------------------------------------


def test_mining_task_finds_hidden_pairs(tmp_path):
    gold = tmp_path / "gold.tsv"
    gold.write_text("eng\tdeu\n" + "".join(f"en:{i} gold\tde:{i} gold\n" for i in range(40)))
    dis = tmp_path / "dis"
    dis.mkdir()
    # German distractors from eng-deu, English distractors from eng-fra; en:1001.. also appears with
    # German, so it must be excluded from the English distractors (it is a translation of a German one)
    (dis / "eng-deu.tsv").write_text("eng\tdeu\n" + "".join(f"en:{1000 + i} x\tde:{1000 + i} x\n" for i in range(100)))
    (dis / "eng-fra.tsv").write_text(
        "eng\tfra\n" + "".join(f"en:{2000 + i} y\tfr:{2000 + i} y\n" for i in range(150)) + "en:1001 x\tfr:1 z\n"
    )
    task = MiningTask(f"tsv:{gold}", [f"tsv:{dis}"], ratio=3.0, seed=1)
    (setup,) = task.setups()
    assert setup["distractors"] == {"src": 100, "tgt": 120}  # 100 German available; English capped at 3 x 40
    assert "en:1001 x" not in setup["tgt"] and not any(t.startswith("en:10") for t in setup["tgt"][40:])
    result = task.evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))
    s = result.scores["de-en"]
    assert s["f1"] == 100.0 and s["precision"] == 100.0 and s["recall"] == 100.0
    assert result.metadata["languages"]["de-en"]["gold_dev"] == 20


@pytest.mark.parametrize("margin", ["ratio", "distance", "absolute"])
def test_mining_task_scores_every_margin_at_both_thresholds(tmp_path, margin):
    gold = tmp_path / "gold.tsv"
    gold.write_text("eng\tdeu\n" + "".join(f"en:{i} gold\tde:{i} gold\n" for i in range(30)))
    dis = tmp_path / "eng-deu.tsv"
    dis.write_text("eng\tdeu\n" + "".join(f"en:{1000 + i} x\tde:{3000 + i} x\n" for i in range(90)))
    result = MiningTask(f"tsv:{gold}", [f"tsv:{dis}"], ratio=3.0, margin=margin, mode="intersect").evaluate(
        EmbeddingCache(MeaningEncoder(), show_progress=False)
    )
    s = result.scores["de-en"]
    assert s["default_f1"] == 100.0 and s["oracle_f1"] == 100.0
    # the dev half's best threshold is its lowest gold score; with raw cosine a few test pairs fall just below it
    assert s["f1"] == 100.0 if margin != "absolute" else s["f1"] > 90 and s["precision"] == 100.0
    assert result.metadata["margin"] == f"{margin}, k=4" and result.metadata["mode"] == "intersect"
    with pytest.raises(ValueError, match="margin one of"):
        MiningTask(f"tsv:{gold}", margin="cosine")


def test_bucc_reader_and_task(tmp_path):
    d = tmp_path / "de-en"
    d.mkdir()
    for split, offset in (("training", 0), ("test", 500)):
        de = [f"de-{offset + i:09d}\tde:{offset + i} s" for i in range(30)]
        en = [f"en-{offset + i:09d}\ten:{offset + i} s" for i in range(10)]  # 10 gold
        en += [f"en-{offset + i:09d}\ten:{offset + 900 + i} s" for i in range(10, 40)]  # unrelated
        (d / f"de-en.{split}.de").write_text("\n".join(de) + "\n")
        (d / f"de-en.{split}.en").write_text("\n".join(en) + "\n")
        (d / f"de-en.{split}.gold").write_text(
            "".join(f"de-{offset + i:09d}\ten-{offset + i:09d}\n" for i in range(10))
        )
    split = read_bucc_split(tmp_path, "de", "training")
    assert len(split.src) == 30 and len(split.gold) == 10
    result = parse_task(f"bucc:{tmp_path}:de").evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))
    assert isinstance(parse_task(f"bucc:{tmp_path}:de"), BuccTask)
    assert result.scores["de-en"]["f1"] == 100.0 and result.split == "test"
    (d / "de-en.test.gold").write_text("de-000000500\ten-999999999\n")
    with pytest.raises(DataError, match=r"de-en\.test\.gold:1: gold pair .* absent"):
        parse_task(f"bucc:{tmp_path}:de").evaluate(EmbeddingCache(MeaningEncoder(), show_progress=False))
    (d / "de-en.test.en").write_text("en-1 no tab here\n")
    with pytest.raises(DataError, match=r"de-en\.test\.en:1: expected id<TAB>sentence"):
        read_bucc_split(tmp_path, "de", "test")


def test_distractors_fill_up_from_later_specs_in_order(tmp_path):
    first = tmp_path / "first.tsv"
    first.write_text("eng\tdeu\n" + "".join(f"en:{i} a\tde:{i} a\n" for i in range(5)))
    second = tmp_path / "second.tsv"
    second.write_text("eng\tdeu\n" + "".join(f"en:{100 + i} b\tde:{100 + i} b\n" for i in range(20)))
    third = tmp_path / "eng-fra.tsv"
    third.write_text("eng\tfra\n" + "".join(f"en:{300 + i} d\tfr:{300 + i} d\n" for i in range(20)))
    chosen = select_distractors([f"tsv:{first}", f"tsv:{third}", f"tsv:{second}"], "de", "en", 8, 0, set(), set())
    assert len(chosen.src) == 8 and all(s.endswith(" a") for s in chosen.src[:5])  # all 5 of the first, then 3 more
    assert sum(s.endswith(" b") for s in chosen.src) == 3
    assert len(chosen.tgt) == 8 and all(t.endswith(" d") for t in chosen.tgt)  # English only from non-German pairs
