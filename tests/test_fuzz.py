"""Fuzzing the readers and the ``data`` verb (hypothesis): arbitrary bytes are read or refused with a
clear error, never a traceback; well-formed rows come back whole. ``benchmarks/reliability.py`` runs the
same targets with many more inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from fuzzing import SEPARATORS, cli_data, read_bytes, tsv_round_trip  # noqa: E402

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: raw bytes biased toward what breaks readers: NUL, CR, tabs, invalid UTF-8, a BOM, long lines
chunks = st.sampled_from(
    [b"\x00", b"\r\n", b"\t", b"\xff", b"\xef\xbb\xbf", b"\n", b"a" * 5000, b"Hallo", b"\xe4\xbd"]
)
raw = st.one_of(st.binary(max_size=400), st.lists(chunks, max_size=30).map(b"".join))
field = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=SEPARATORS), min_size=1, max_size=40)


@pytest.mark.parametrize("kind", ["tsv", "pair", "jsonl", "gettext"])
@FAST
@given(data=raw, other=raw)
def test_readers_read_or_refuse_arbitrary_bytes(kind, data, other):
    assert read_bytes(kind, data, other) in ("ok", "error")


@FAST
@given(rows=st.lists(st.tuples(field, field).filter(lambda r: r[0].strip() and r[1].strip()), min_size=1, max_size=30))
def test_well_formed_tsv_rows_come_back_whole(rows):
    assert tsv_round_trip(rows) == 0


@settings(max_examples=25, deadline=None)
@given(data=raw)
def test_data_verb_never_shows_a_traceback(data):
    cli_data(data)


def test_a_one_megabyte_line_and_crlf_and_bom_are_read(tmp_path):
    from mlembed.data import read_pairs

    path = tmp_path / "x.eng-deu.tsv"
    path.write_bytes(b"\xef\xbb\xbfeng\tdeu\r\n" + b"a" * 1_000_000 + b"\tb\r\nYes\tJa\r\n")
    pairs = list(read_pairs(f"tsv:{path}"))
    assert [(len(p.src), p.tgt) for p in pairs] == [(1_000_000, "b"), (3, "Ja")]
