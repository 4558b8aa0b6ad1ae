"""The phone-evidence recipe's substitution copies, localisation measure and weight rule
(recipes/local/phone_evidence.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from orthoepy.encoder.corpus import SentenceLabels, Utterance, WordLabel

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "local" / "phone_evidence.py"
spec = importlib.util.spec_from_file_location("phone_evidence_recipe", SCRIPT)
recipe = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = recipe
spec.loader.exec_module(recipe)


def _utterance(utt_id: str, speaker: str, k: float = 1.0) -> Utterance:
    """k: the label of THINK's /K/ (the slopes need labels that vary)."""
    words = (WordLabel("THINK", ("TH", "IH1", "NG", "K"), (2.0, 2.0, 2.0, k), 7.0 + k, 10.0, 7.0 + k),
             WordLabel("SO", ("S", "OW1"), (2.0, 0.0), 5.0, 10.0, 5.0))
    return Utterance(utt_id, speaker, "train", Path("/nonexistent.wav"), "THINK SO", words,
                     SentenceLabels(6.0 + k, 10.0, 8.0, 8.0, 6.0 + k))


def test_substituted_copies_replace_only_well_pronounced_phones_and_mark_them():
    utts = [_utterance(f"u{i}", f"s{i % 3}", k=i / 3) for i in range(6)]
    copies = recipe.substituted_copies(utts, 2)
    assert len(copies) == 12 and len({c.utt_id for c in copies}) == 12
    assert all(c.utt_id.split("~")[1] in ("substitution0", "substitution1") for c in copies)
    sources = {u.utt_id: u for u in utts}
    for c in copies:
        replaced = recipe._replaced(c, sources)
        assert 1 <= len(replaced) <= 3
        labels = c.phone_accuracy
        # a replaced phone was scored >= 1.5 and is now 0; the others keep their labels
        source = sources[c.utt_id.split("~")[0]].phone_accuracy
        assert all(labels[i] == 0.0 and source[i] >= 1.5 for i in replaced)
        assert all(labels[i] == source[i] for i in range(len(labels)) if i not in replaced)
    assert recipe._replaced(utts[0], sources) == set()


def _rows(preds_replaced, preds_others):
    rows, pred = [], []
    for k, (p, others) in enumerate(zip(preds_replaced, preds_others)):
        rows.append({"utt_id": f"u{k}~substitution0", "word_index": 0, "replaced": True})
        pred.append(p)
        for o in others:
            rows.append({"utt_id": f"u{k}~substitution0", "word_index": 0, "replaced": False})
            pred.append(o)
        rows.append({"utt_id": f"u{k}~substitution0", "word_index": 1, "replaced": False})
        pred.append(0.1)  # another word's low phone does not count against this word
    return np.array(pred), rows


def test_localisation_counts_replaced_phones_below_1_and_their_words_other_phones():
    pred, rows = _rows([0.5, 1.2, 0.9, 0.2], [[1.8, 1.6], [1.9], [1.4, 2.0], []])
    out = recipe.localisation(pred, rows)
    assert out["n_replaced"] == 4
    assert out["replaced_below_1"] == 0.75
    assert out["word_others_at_least_1_5"] == 0.75  # the third word has a 1.4
    assert out["localised"] == 0.5  # the first and the fourth


def _candidate(weight, pcc, flags, below):
    return {"weight": weight, "real": {"pcc": pcc, "flagged_share_of_phones_scored_2": flags},
            "substituted": {"localised": below}}


def test_choose_weight_keeps_real_pcc_and_false_flags_within_bounds():
    candidates = [_candidate(0.0, 0.700, 0.010, 0.30), _candidate(0.5, 0.697, 0.015, 0.45),
                  _candidate(1.0, 0.690, 0.018, 0.60), _candidate(2.0, 0.699, 0.030, 0.70)]
    assert recipe.choose_weight(candidates, 0.005, 0.02)["weight"] == 0.5  # 1.0 loses PCC, 2.0 flags too many
    assert recipe.choose_weight(candidates, 0.02, 0.02)["weight"] == 1.0
    assert recipe.choose_weight(candidates[:1] + [_candidate(1.0, 0.5, 0.5, 0.9)], 0.005, 0.02)["weight"] == 0.0
    tie = [_candidate(0.0, 0.700, 0.010, 0.30), _candidate(0.5, 0.700, 0.010, 0.40), _candidate(1.0, 0.700, 0.010, 0.40)]
    assert recipe.choose_weight(tie, 0.005, 0.02)["weight"] == 0.5
