"""The listening checks (encoder/scorer/listening.py) on crafted scores."""
import numpy as np
from test_augmentation import SLOPES, utterance, word

from orthoepy.encoder.scorer.augmentation import mismatched, nonspeech, omit_word, substitute_phones
from orthoepy.encoder.scorer.listening import Scores, listening_report, spread_report


def scores(phone, words, total):
    return Scores(np.array(phone, float), np.array(words, float), total)


def test_substitution_checks_read_the_replaced_phone_its_neighbours_and_the_sentence():
    source = utterance()  # I | TH IH NG K | S OW ; phone labels 2 | 2 2 1.8 2 | 2 1
    item = substitute_phones(source, {1: "S", 3: "N"}, SLOPES, "u1~substitution")  # TH -> S, NG -> N in THINK
    items, sources = {item.utt_id: item}, {"u1": source}
    heard = {"u1": scores([2, 2, 2, 2, 2, 2, 1], [10, 10, 7], 8.0),
             item.utt_id: scores([2, 0.4, 1.6, 1.2, 1.9, 2, 1], [10, 4, 7], 6.0)}
    report = listening_report(items, sources, heard)
    assert report["substituted_below_1"] == {"rate": 0.5, "n": 2}  # NG->N scored 1.2: missed
    # neighbours of each replaced phone in THINK that were well read: IH, K (each counted per replaced phone)
    assert report["word_neighbours_at_least_1_5"] == {"rate": 1.0, "n": 4}
    assert report["several_substitutions_total_drop_1_5"] == {"rate": 1.0, "n": 1}
    assert report["several_substitutions_mean_total_drop"] == 2.0
    heard[item.utt_id] = scores([2, 0.4, 1.4, 0.2, 1.9, 2, 1], [10, 4, 7], 7.0)
    report = listening_report(items, sources, heard)
    assert report["word_neighbours_at_least_1_5"]["rate"] == 0.5
    assert report["several_substitutions_total_drop_1_5"]["rate"] == 0.0


def test_omission_mismatch_and_nonspeech_checks(tmp_path):
    source, other = utterance(), utterance("u2", "s2", (word("GOOD", ["G", "UH1", "D"], [2.0] * 3),))
    omitted = omit_word(source, other.words[0], 1, SLOPES, "u1~omission")
    wrong_text = mismatched(source, other, "u1~mismatch")
    noise = nonspeech(tmp_path / "n.wav", source, "nonspeech0~noise")
    items = {i.utt_id: i for i in (omitted, wrong_text, noise)}
    heard = {omitted.utt_id: scores([2] * 10, [10, 3.9, 10, 7], 7.0),
             wrong_text.utt_id: scores([1] * 3, [5], 3.5), noise.utt_id: scores([0] * 7, [0, 0, 0], 0.5)}
    report = listening_report(items, {"u1": source, "u2": other}, heard)
    assert report["omitted_word_below_4"] == {"rate": 1.0, "n": 1}
    assert report["mismatch_total_at_most_3"] == {"rate": 0.0, "n": 1}
    assert report["nonspeech_total_at_most_1"] == {"rate": 1.0, "n": 1}
    assert report["substituted_below_1"] == {"rate": None, "n": 0}


def test_spread_report_tells_plateaus_from_crowding():
    raw = np.random.default_rng(0).normal(7.0, 1.5, 500)
    smooth = spread_report(raw)
    assert smooth["distinct_exact"] == 500  # a continuous output: no exact ties
    # at 0.01, 500 totals with sd 1.5 collide by chance; the birthday bound says how many stay distinct
    assert abs(smooth["distinct_at_0.01"] - smooth["expected_distinct_at_0.01_continuous"]) < 30
    plateaued = spread_report(np.clip(raw, 6.5, 8.0))  # a map that flattens both tails
    assert plateaued["distinct_exact"] < 400
    assert spread_report(np.full(10, 7.0))["distinct_at_0.01"] == 1
