"""choose_pronunciation: the reading and per-word variants that fit the audio (synthetic speech from espeak-ng)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from orthoepy.encoder.alignment import AlternativeChoice, ForcedAligner
from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.lexicon import Lexicon
from orthoepy.encoder.variants import choose_pronunciation

# espeak-ng input: plain text, or its phoneme mnemonics in [[...]] ('aID3 = /AY DH ER/, 'i:D3 = /IY DH ER/)
SPOKEN = {
    "either_ay": "[['aID3]] way",
    "either_iy": "[['i:D3]] way",
    "year": "In nineteen ninety we moved.",
    "cardinal": "In one thousand nine hundred ninety we moved.",
    "read_past": "I red it.",
    "read_present": "I reed it.",
}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Name -> Audio synthesised now (nothing committed); skipped without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng): no synthetic speech to align")
    folder = tmp_path_factory.mktemp("speech")
    clips = {}
    for name, text in SPOKEN.items():
        path = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True, capture_output=True)
        clips[name] = load_audio(path)
    return clips


@pytest.fixture(scope="module")
def aligner():
    return ForcedAligner()


@pytest.mark.parametrize("clip, phones", [("either_ay", ("AY1", "DH", "ER0")), ("either_iy", ("IY1", "DH", "ER0"))])
def test_word_variant_matching_the_audio(speech, aligner, clip, phones):
    chosen = choose_pronunciation(aligner, speech[clip], [Lexicon().pronounce("either way")])
    assert chosen.phones[0] == phones
    assert chosen.variants[0][0] == phones and len(chosen.variants[0]) == 2


@pytest.mark.parametrize("clip, words", [("year", "IN NINETEEN NINETY WE MOVED"),
                                         ("cardinal", "IN ONE THOUSAND NINE HUNDRED NINETY WE MOVED")])
def test_reading_matching_the_audio(speech, aligner, clip, words):
    candidates = Lexicon().readings("In 1990 we moved.")
    assert len(candidates) >= 2
    chosen = choose_pronunciation(aligner, speech[clip], candidates)
    assert " ".join(chosen.words) == words
    assert chosen.punctuation[-1] == "."


@pytest.mark.parametrize("clip, phones", [("read_past", ("R", "EH1", "D")), ("read_present", ("R", "IY1", "D"))])
def test_ambiguous_homograph_decided_by_the_audio(speech, aligner, clip, phones):
    chosen = choose_pronunciation(aligner, speech[clip], Lexicon().readings("I read it."))
    assert chosen.phones[1] == phones


class StubAligner:
    """Returns a fixed choice per candidate (by word count), or None to mimic a failed alignment."""

    def __init__(self, results):
        self.results = results
        self.calls = []

    def choose_alternatives(self, audio, words):
        self.calls.append(words)
        return self.results.get(len(words))


def test_best_scoring_candidate_with_its_chosen_variants():
    readings = Lexicon().readings("either 1990")
    short, long = readings[0], next(r for r in readings if "THOUSAND" in r.words)  # NINETEEN NINETY / ONE THOUSAND ...
    stub = StubAligner({3: AlternativeChoice([1, 0, 0], -2.0), 6: AlternativeChoice([0] * 6, -1.5)})
    chosen = choose_pronunciation(stub, None, [short, long])
    assert chosen.words == long.words
    assert stub.calls[0][0] == [("IY", "DH", "ER"), ("AY", "DH", "ER")]  # stress-free, one entry per base sequence
    stub = StubAligner({3: AlternativeChoice([1, 0, 0], -1.0), 6: None})
    chosen = choose_pronunciation(stub, None, [short, long])
    assert chosen.words == short.words and chosen.phones[0] == ("AY1", "DH", "ER0")


def test_nothing_aligns_gives_the_default_and_empty_is_an_error():
    candidates = Lexicon().readings("In 1990")
    assert choose_pronunciation(StubAligner({}), None, candidates) is candidates[0]
    with pytest.raises(ValueError, match="at least one candidate"):
        choose_pronunciation(StubAligner({}), None, [])


def test_choose_alternatives_rejects_a_word_without_pronunciation(speech, aligner):
    with pytest.raises(ValueError, match="at least one pronunciation"):
        aligner.choose_alternatives(speech["year"], [[("IH", "N")], []])


def _frames_saying(phones: list[str], frames_each: int = 4) -> np.ndarray:
    """(T, 41) CTC log-probabilities of a recogniser that clearly hears `phones` (a blank after each)."""
    from orthoepy.encoder.phoneset import PHONE_INDEX

    rows = []
    for phone in phones:
        for k in range(frames_each):
            row = np.full(41, 0.01 / 40)
            row[PHONE_INDEX[phone] + 1 if k < 2 else 0] = 0.99
            rows.append(row)
    return np.log(np.asarray(rows))


def test_the_phone_recogniser_picks_the_reading_it_hears():
    readings = Lexicon().readings("in 1990")
    short, long = readings[0], next(r for r in readings if "THOUSAND" in r.words)
    stub = StubAligner({3: AlternativeChoice([0, 0, 0], -2.0), 6: AlternativeChoice([0] * 6, -1.5)})
    said = [p.rstrip("012") for word in short.phones for p in word]
    assert choose_pronunciation(stub, None, [short, long], _frames_saying(said)).words == short.words
    assert choose_pronunciation(stub, None, [short, long]).words == long.words  # the aligner's score alone
    assert choose_pronunciation(stub, None, [short], _frames_saying(said)).words == short.words
