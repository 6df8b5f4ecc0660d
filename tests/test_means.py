"""Neighbourhood means after an approximate k-NN (mlembed.means): exact for the rows of every pair that can reach
the cut, or calibrated on exact samples; and the exact neighbours of a subset of rows they rest on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlembed.knn import MiningOptions, Neighbours, exact_neighbours, knn_both_ways
from mlembed.margin import neighbourhood_means, select_pairs
from mlembed.means import calibrated_means, estimate_means, exact_where_needed, means_cut, pooled
from mlembed.mine import mine_embeddings

# .ci/run runs this module again under MLEMBED_PRECISION=fp32 and =bf16: exact_neighbours ranks by bf16 products
# where encoding runs bf16 (then rescores exactly), by float32 ones elsewhere; both must give the exact search's rows
pytestmark = pytest.mark.precision


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def two_languages() -> tuple[np.ndarray, np.ndarray]:
    """3,000 translations (row i of each side) and 3,000 unrelated rows a side, each side shifted by its own
    offset as real encoders place two languages, so that an IVF probing 2 of its lists misses true neighbours."""
    rng = np.random.default_rng(0)
    meaning = rng.normal(size=(3000, 32))
    x = unit(
        np.r_[meaning, rng.normal(size=(3000, 32))] + 0.5 * rng.normal(size=32) + 0.35 * rng.normal(size=(6000, 32))
    )
    y = unit(
        np.r_[meaning, rng.normal(size=(3000, 32))] + 0.5 * rng.normal(size=32) + 0.35 * rng.normal(size=(6000, 32))
    )
    return x, y


def scored(pairs) -> dict[tuple[int, int], float]:
    return dict(zip(zip(pairs.src_idx.tolist(), pairs.tgt_idx.tolist()), pairs.scores.tolist()))


def test_exact_neighbours_of_some_rows_are_the_exact_searchs(two_languages):
    x, y = two_languages
    fwd, _ = knn_both_ways(x, y, MiningOptions(k=4))
    rows = np.array([0, 7, 2999, 3000, 5999])
    got = exact_neighbours(x, rows, y, 4, memory_budget="210M")  # small blocks: several per row shard
    assert got.ids.tolist() == fwd.ids[rows].tolist() and got.sims.tolist() == fwd.sims[rows].tolist()


def test_exact_neighbours_rank_again_where_bf16_products_cannot_tell(monkeypatch, caplog):
    import logging

    import torch

    monkeypatch.setenv("MLEMBED_PRECISION", "bf16")  # (whatever CI's run sets: this is the bf16 ranking's test)
    d, rng = 64, np.random.default_rng(0)
    close = 0.9 + np.arange(40) * 1e-4  # 40 rows 1e-4 apart: bf16 (steps of 2^-8 here) ties 36 of them
    near = np.zeros((40, d))
    near[:, 0], near[np.arange(40), 2 + np.arange(40)] = close, np.sqrt(1 - close**2)
    far = rng.normal(size=(1000, d))
    far[:, 0] = 0
    db = np.r_[unit(far), near].astype(np.float32)
    queries = np.eye(d, dtype=np.float32)[:2]  # the first is the one whose neighbours tie in bf16
    truth = np.argsort(-(db @ queries[0]), kind="stable")[:4].tolist()
    bf16_top = torch.topk(torch.from_numpy(queries[:1]).bfloat16() @ torch.from_numpy(db).bfloat16().T, 12).indices
    assert not set(truth) & set(bf16_top[0].tolist())  # the bf16 candidates alone miss every true neighbour
    with caplog.at_level(logging.DEBUG, logger="mlembed.knn"):
        got = exact_neighbours(queries, np.array([0, 1]), db, 4)
    assert got.ids[0].tolist() == truth and got.sims[0].tolist() == (db[truth] @ queries[0]).tolist()
    assert "ranked again by float32" in caplog.text


def test_exact_means_make_every_pair_above_the_cut_score_as_the_exact_search(two_languages):
    x, y = two_languages
    ivf = MiningOptions(k=4, index="ivf", nprobe=1, threshold=0, mode="max")
    fwd, bwd = knn_both_ways(x, y, ivf)
    exact_fwd, exact_bwd = knn_both_ways(x, y, MiningOptions(k=4))
    too_low = neighbourhood_means(fwd) < neighbourhood_means(exact_fwd) - 1e-6
    assert too_low.mean() > 0.3  # the IVF misses neighbours: its means are too low, its margins too high
    cut = 1.1
    fixed_fwd, fixed_bwd, report = exact_where_needed(x, y, fwd, bwd, "ratio", cut)
    exact = scored(select_pairs(exact_fwd, exact_bwd, mode="max"))
    fixed = scored(select_pairs(fixed_fwd, fixed_bwd, mode="max").above(cut))
    assert fixed and all(exact[pair] == score for pair, score in fixed.items())  # the exact search's, to the bit
    found = scored(select_pairs(fwd, bwd, mode="max").above(cut))
    exact_above = {pair for pair, score in exact.items() if score >= cut}
    assert len(exact_above & set(fixed)) >= len(exact_above & set(found))  # (what the IVF never found stays lost)
    wrong = {name: sum(i != j for i, j in pairs) for name, pairs in (("found", found), ("fixed", fixed))}
    assert wrong["fixed"] < wrong["found"] / 2, wrong  # the precision the approximate means lost
    refined = sum(r[0] for r in report.rows), sum(r[1] for r in report.rows)
    assert 0 < refined[0] < len(x) and 0 < refined[1] < len(y) and report.cut == cut  # only where it can matter
    assert "exact neighbourhood means for" in report.summary()


def test_pooled_neighbours_take_what_the_other_direction_found(two_languages):
    x, y = two_languages
    fwd, bwd = knn_both_ways(x, y, MiningOptions(k=4, index="ivf", nprobe=1))
    exact_fwd, exact_bwd = knn_both_ways(x, y, MiningOptions(k=4))
    pooled_fwd, pooled_bwd = pooled(fwd, bwd)
    for found, pool, exact, other in ((fwd, pooled_fwd, exact_fwd, bwd), (bwd, pooled_bwd, exact_bwd, fwd)):
        before, after, truth = neighbourhood_means(found), neighbourhood_means(pool), neighbourhood_means(exact)
        assert (after >= before).all() and (after <= truth + 1e-6).all()  # still a lower bound of the exact mean
        assert (after > before).mean() > 0.1  # rows whose own search missed what the other side's found
        seen = {(i, int(j)): s for i, (ids, sims) in enumerate(zip(found.ids, found.sims)) for j, s in zip(ids, sims)}
        seen |= {(int(i), j): s for j, (ids, sims) in enumerate(zip(other.ids, other.sims)) for i, s in zip(ids, sims)}
        for i, (ids, sims) in enumerate(zip(pool.ids, pool.sims)):
            assert len(set(ids.tolist())) == len(ids) and all(seen[(i, int(j))] == s for j, s in zip(ids, sims))
            assert list(sims) == sorted(sims, reverse=True)
    exact_again = pooled(exact_fwd, exact_bwd)  # nothing to add to an exact search's lists
    assert np.array_equal(exact_again[0].ids, exact_fwd.ids) and np.array_equal(exact_again[1].sims, exact_bwd.sims)


def test_a_row_with_fewer_neighbours_found_than_k_gets_exact_ones(two_languages):
    x, y = two_languages
    exact_fwd, exact_bwd = knn_both_ways(x, y, MiningOptions(k=4))
    only_best = Neighbours(exact_fwd.sims.copy(), exact_fwd.ids.copy())
    only_best.sims[:, 1:], only_best.ids[:, 1:] = -np.inf, -1  # each source row found its best target only
    assert (neighbourhood_means(only_best) > neighbourhood_means(exact_fwd)).all()  # a mean too high, not too low
    fwd, bwd, _ = exact_where_needed(x, y, only_best, exact_bwd, "ratio", 1.1)
    exact = scored(select_pairs(exact_fwd, exact_bwd, mode="max"))
    fixed = scored(select_pairs(fwd, bwd, mode="max").above(1.1))
    assert set(fixed) == {pair for pair, score in exact.items() if score >= 1.1}
    assert all(exact[pair] == score for pair, score in fixed.items())


def test_mine_embeddings_cuts_at_the_threshold_or_the_margins_default(two_languages):
    x, y = two_languages
    assert means_cut(MiningOptions(threshold=None)) == 1.06 and means_cut(MiningOptions(threshold=0.5)) == 1.06
    assert means_cut(MiningOptions(threshold=1.2)) == 1.2 and means_cut(MiningOptions(means_cut=1.15)) == 1.15
    assert means_cut(MiningOptions(margin="distance", threshold=0)) == 0.04
    options = MiningOptions(k=4, index="ivf", nprobe=1, mode="max", threshold=1.06, means="exact")
    timings: dict[str, float] = {}
    pairs = mine_embeddings(x, y, options, timings=timings)
    exact = scored(mine_embeddings(x, y, MiningOptions(k=4, mode="max", threshold=1.06)))
    assert set(timings) == {"knn", "means", "margin"}
    shared = {pair: score for pair, score in scored(pairs).items() if pair in exact}
    assert len(shared) > 0.99 * len(pairs) and all(exact[pair] == score for pair, score in shared.items())
    # (in max mode a pair the IVF never found can take a sentence first in the exact search's output)


def test_calibrated_means_come_closer_to_the_exact_ones(two_languages):
    x, y = two_languages
    fwd, bwd = knn_both_ways(x, y, MiningOptions(k=4, index="ivf", nprobe=1))
    exact_fwd, exact_bwd = knn_both_ways(x, y, MiningOptions(k=4))
    fwd_mean, bwd_mean, report = calibrated_means(x, y, fwd, bwd, sample=300)
    for found, fixed, exact in ((fwd, fwd_mean, exact_fwd), (bwd, bwd_mean, exact_bwd)):
        before = np.abs(neighbourhood_means(found) - neighbourhood_means(exact)).mean()
        after = np.abs(fixed - neighbourhood_means(exact)).mean()
        assert after < before / 2, (before, after)
        assert np.all(fixed >= neighbourhood_means(found))  # never below the lower bound the search gives
    assert len(report.lines) == 2 and "calibrated" in report.summary()
    _, _, means, _ = estimate_means(x, y, fwd, bwd, MiningOptions(index="ivf", means="calibrated"))
    assert means is not None and means[0].shape == (len(x),)


def test_an_exact_search_keeps_its_neighbours_and_the_absolute_margin_takes_no_means(two_languages):
    x, y = two_languages
    nn = Neighbours(np.ones((len(x), 1), "float32"), np.zeros((len(x), 1), "int64"))
    fwd, _, means, report = estimate_means(x, y, nn, nn, MiningOptions(means="exact"))
    assert fwd is nn and means is None and report.method == "found"
    options = MiningOptions(index="ivf", means="exact", margin="absolute")
    fwd, bwd, means, report = estimate_means(x, y, nn, nn, options)
    assert means is None and report.method == "found"  # (the candidates pooled, as for any approximate search)
    assert fwd.ids.tolist() == pooled(nn, nn)[0].ids.tolist() and bwd.ids[0].tolist() == [0]
    with pytest.raises(ValueError, match="ratio and distance margins"):
        exact_where_needed(x, y, nn, nn, "absolute", 0.7)
    with pytest.raises(ValueError, match="--means 'mean'"):
        MiningOptions(means="mean").check()


def test_mine_cli_takes_means_and_times_the_stage(tmp_path, two_languages, capsys):
    from mlembed.cli import main

    x, y = two_languages
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "src.txt").write_text("".join(f"source {i}\n" for i in range(len(x))), encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("".join(f"target {i}\n" for i in range(len(y))), encoding="utf-8")
    out = tmp_path / "out.tsv"
    argv = ["mine", "--src", str(tmp_path / "src.txt"), "--tgt", str(tmp_path / "tgt.txt"), "-o", str(out)]
    argv += ["--src-embeddings", str(tmp_path / "x.npy"), "--tgt-embeddings", str(tmp_path / "y.npy")]
    argv += ["--index", "ivf", "--nprobe", "1", "--means", "exact", "--means-cut", "1.1", "--threshold", "1.1"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "means" in json.loads(printed.out.split("seconds per stage: ")[1])
    assert "exact neighbourhood means for" in printed.err
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and sum(r[1].split()[1] == r[2].split()[1] for r in rows) > 0.95 * len(rows)


def test_a_resumed_run_replays_the_saved_rounds(two_languages, tmp_path, monkeypatch):
    import mlembed.means as means

    x, y = two_languages
    fwd, bwd = knn_both_ways(x, y, MiningOptions(k=4, index="ivf", nprobe=1))
    first = exact_where_needed(x, y, fwd, bwd, "ratio", 1.1, workdir=tmp_path)
    assert len(list(tmp_path.glob("means-*.npz"))) == len(first[2].rows) > 1

    def no_search(*args, **kwargs):
        raise AssertionError("a saved round was computed again")

    monkeypatch.setattr(means, "exact_neighbours", no_search)
    again = exact_where_needed(x, y, fwd, bwd, "ratio", 1.1, workdir=tmp_path)
    assert again[2].rows == first[2].rows
    assert np.array_equal(again[0].ids, first[0].ids) and np.array_equal(again[1].sims, first[1].sims)
    with pytest.raises(AssertionError, match="computed again"):  # another cut: other rows, nothing replayed
        exact_where_needed(x, y, fwd, bwd, "ratio", 1.2, workdir=tmp_path)
