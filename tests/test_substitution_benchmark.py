"""The synthetic substitution benchmark's phoneme editing (recipes/local/substitution_benchmark.py)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "local" / "substitution_benchmark.py"
spec = importlib.util.spec_from_file_location("substitution_benchmark", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # dataclasses look their module up
spec.loader.exec_module(bench)


def test_codes_are_found_only_as_whole_phones():
    assert bench.find_code("T'INk", "TH") == [(0, 1)]
    assert bench.find_code("tS'3:tS", "SH") == []  # the S of CH (tS) is not SH
    assert bench.find_code("S'u:", "SH") == [(0, 1)]
    assert bench.find_code("dZ'Vdz", "Z") == [(5, 6)]  # z is Z; the Z of JH (dZ) is ZH's code, not Z's
    assert bench.find_code("m'aIt", "AE") == []  # a of the diphthong aI is not AE
    assert bench.find_code("k'at", "AE") == [(2, 3)]


def test_edit_word_replaces_or_drops_one_phone_and_refuses_ambiguity():
    assert bench.edit_word("T'INk", "TH", "S") == "s'INk"
    assert bench.edit_word("v'Eri", "V", "B") == "b'Eri"
    assert bench.edit_word("h'aUs", "S", None) == "h'aU"
    assert bench.edit_word("s'Ists", "S", "SH") is None  # three S: which one is unclear
    assert bench.edit_word("k'at", "TH", "S") is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt install espeak-ng)")
def test_espeak_codes_of_a_word():
    assert bench.espeak_codes("THINK") == "T'INk"
