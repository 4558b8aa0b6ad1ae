"""The text-LPR threshold's fitting (recipes/local/text_lpr_threshold.py), on made-up values."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "local" / "text_lpr_threshold.py"
spec = importlib.util.spec_from_file_location("text_lpr_threshold", SCRIPT)
recipe = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = recipe
spec.loader.exec_module(recipe)


def test_the_threshold_lets_through_at_most_the_budget():
    values = [-5.0 + 0.01 * k for k in range(300)]  # -5.00 .. -2.01
    t = recipe.threshold(values, 0.01)
    assert sum(v >= t for v in values) <= 3
    assert t > values[-4]
    # fewer values than one budget's worth: none may reach it, not even the largest (a grid value above it)
    assert recipe.threshold([-3.0, -2.16], 0.01) > -2.16


def test_each_kind_of_non_reading_is_held_to_the_budget_on_its_own():
    rows = [{"speaker": f"s{k % 5}", "kind": "other_text", "label": None, "text_lpr": -8.0 + 0.001 * k}
            for k in range(800)]
    rows += [{"speaker": "synthetic", "kind": "other_language", "label": None, "text_lpr": v}
             for v in (-4.0, -3.0, -2.5)]
    rows += [{"speaker": f"s{k % 5}", "kind": "reading", "label": 8.0, "text_lpr": -1.0} for k in range(50)]
    t = recipe.kind_threshold(rows, 0.01)
    assert t > -2.5  # pooled, 8 of 803 values may reach it and the other-language -2.5 would pass
    report = recipe.summarise(rows, 0.01)
    assert report["in_sample"]["reading_at_or_above"] == 1.0
    assert report["in_sample"]["other_language_at_or_above"] == 0.0
    assert "rows" not in report  # no corpus labels or ids are written
