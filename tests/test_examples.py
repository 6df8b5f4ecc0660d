"""The scripts in examples/ run, as smoke runs (one training step on a few hundred gettext pairs, no dev set).

Each runs in a subprocess, as a user would run it, offline, with its own mlembed cache; the student
``make_multilingual.py`` writes is the one ``add_language.py`` continues from.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.slow


def _gettext_has(lang: str) -> bool:
    from mlembed.data import read_pairs

    return next(iter(read_pairs(f"gettext:system:{lang}")), None) is not None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    for lang in ("de", "fr", "uk"):
        if not _gettext_has(lang):
            pytest.skip(f"no gettext catalogs for {lang} under /usr/share/locale")
    return tmp_path_factory.mktemp("examples")


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        MLEMBED_CACHE=str(cwd / "cache"),  # the teacher cache: not the user's
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def assert_encodes(folder: Path) -> None:
    from sentence_transformers import SentenceTransformer

    vectors = SentenceTransformer(str(folder), device="cpu").encode(["Guten Morgen", "Good morning", "Доброе утро"])
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()


@pytest.fixture(scope="module")
def multilingual(workdir) -> tuple[subprocess.CompletedProcess, Path]:
    """``make_multilingual.py``, short: the auto student (no e5 conversion or map), 1 step, no dev set (its
    figures cost more than the step: 500 held-out English sentences encoded before and after)."""
    done = run_example(
        "make_multilingual.py",
        *("--student", "auto", "--langs", "de,fr", "--max-pairs", "200", "--max-steps", "1", "--eval-pairs", "0"),
        *("--output", "student"),
        cwd=workdir,
    )
    return done, workdir / "student"


def test_make_multilingual_distils_a_student_sentence_transformers_loads(multilingual):
    done, student = multilingual
    lines = done.stdout.splitlines()
    # 1. three cleaned pairs of the languages asked for
    shown = [line for line in lines if line.startswith("Pair(")]
    assert len(shown) == 3 and all(re.search(r"tgt_lang='(de|fr)", line) for line in shown)
    # 2. the run's summary: the steps asked for, and no dev figures without a dev set
    summary = next(line for line in lines if " steps, dev: " in line)
    steps, dev = summary.split(" steps, dev: ")
    assert int(steps) == 1 and ast.literal_eval(dev) == {}
    # 3. the table: both models' cosines per language, the English row 1.0 for both
    en = next(line for line in lines if line.startswith("en ") and "1.000" in line)
    assert en.split()[-2:] == ["1.000", "1.000"]
    assert any(line.startswith("de ") for line in lines) and "teacher" in done.stdout and "student" in done.stdout
    # 4. plain sentence-transformers loads and encodes it
    assert lines[-1] == "(3, 384)"
    assert (student / "README.md").is_file() and not (student / "_distill").exists()
    assert_encodes(student)


def test_add_language_continues_the_student_and_reports_accuracy(multilingual, workdir):
    _, student = multilingual
    done = run_example(
        "add_language.py",
        *(str(student), "uk", "--max-pairs", "200", "--max-steps", "1", "--eval-pairs", "0", "--held-out", "100"),
        *("--output", "student-plus-uk"),
        cwd=workdir,
    )
    report = re.search(
        r"^uk: translation accuracy on 100 held-out gettext pairs (\d+\.\d) -> (\d+\.\d) \((\d+) steps\)$",
        done.stdout,
        re.MULTILINE,
    )
    assert report, done.stdout[-2000:]
    before, after, steps = float(report[1]), float(report[2]), int(report[3])
    assert 0 <= before <= 100 and 0 <= after <= 100 and steps == 1
    # the held-out test pairs were never trained on
    train = (workdir / "student-plus-uk.train.tsv").read_text(encoding="utf-8").splitlines()
    test = (workdir / "student-plus-uk.test.tsv").read_text(encoding="utf-8").splitlines()
    held_english = {row.split("\t")[0] for row in test[1:]}
    assert len(test) - 1 == 100 and train and not held_english & {row.split("\t")[0] for row in train[1:]}
    assert_encodes(workdir / "student-plus-uk")
