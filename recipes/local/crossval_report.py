#!/usr/bin/env python
"""Markdown tables of cross-validated scorers: out-of-fold PCC/SCC (raw and calibrated), the listening checks on
out-of-fold augmented items, dev (held out, used for nothing), and, where given, the test split's metrics and
listening benchmark.

    python recipes/local/crossval_report.py --model aug=/work/exp4/scorer/aug --model no_aug=/work/exp4/scorer/no_aug \
        [--test aug=/work/exp4/eval/aug/test.metrics.json] [--listening aug=docs/listening_test.json] > table.md
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ASPECTS = ("phone", "word_accuracy", "word_total", "sentence_accuracy", "sentence_completeness",
           "sentence_fluency", "sentence_prosodic", "sentence_total")
CHECKS = ("substituted_below_1", "word_neighbours_at_least_1_5", "several_substitutions_total_drop_1_5",
          "omitted_word_below_4", "mismatch_total_at_most_3", "nonspeech_total_at_most_1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="NAME=model directory")
    p.add_argument("--test", action="append", default=[], help="NAME=orthoepy evaluate --out JSON")
    p.add_argument("--listening", action="append", default=[], help="NAME=listening_benchmark.py --out JSON")
    args = p.parse_args()
    reports = {n: json.loads((Path(d) / "training_report.json").read_text()) for n, d in _pairs(args.model)}
    print("\n".join(_metric_table(reports, "cv", "out-of-fold over train")))
    print("\n".join(_metric_table(reports, "dev", "dev split (held out, not used)")))
    tests = {n: json.loads(Path(f).read_text()) for n, f in _pairs(args.test)}
    if tests:
        print("\n".join(_test_table(tests)))
    print("\n".join(_listening_table({n: r.get("cv_listening", {}) for n, r in reports.items()},
                                     "out-of-fold augmented items")))
    listening = {n: json.loads(Path(f).read_text()) for n, f in _pairs(args.listening)}
    if listening:
        print("\n".join(_listening_table(listening, "test split benchmark")))
    print("\n".join(_training_table(reports)))


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    return [tuple(v.split("=", 1)) for v in values]


def _metric_table(reports: dict, key: str, title: str) -> list[str]:
    rows = [f"\n{title} (PCC / SCC)\n", "| model | kind | " + " | ".join(ASPECTS) + " |",
            "|---|---|" + "---|" * len(ASPECTS)]
    for name, r in reports.items():
        for kind in ("raw", "calibrated"):
            table = r.get(key, {}).get(kind, {})
            rows.append(f"| {name} | {kind} | " + " | ".join(_cell(table.get(a)) for a in ASPECTS) + " |")
    return rows


def _test_table(tests: dict) -> list[str]:
    rows = ["\ntest split (PCC / SCC, calibrated)\n", "| model | " + " | ".join(ASPECTS) + " |",
            "|---|" + "---|" * len(ASPECTS)]
    for name, t in tests.items():
        table = t.get("calibrated", t)
        rows.append(f"| {name} | " + " | ".join(_cell(table.get(a)) for a in ASPECTS) + " |")
    return rows


def _listening_table(reports: dict, title: str) -> list[str]:
    rows = [f"\nlistening checks, {title} (rate, n)\n", "| model | " + " | ".join(CHECKS) + " | mean total drop |",
            "|---|" + "---|" * (len(CHECKS) + 1)]
    for name, r in reports.items():
        cells = [f"{r[c]['rate']:.3f} ({r[c]['n']})" if r.get(c, {}).get("rate") is not None else "-" for c in CHECKS]
        drop = r.get("several_substitutions_mean_total_drop")
        spread = r.get("distinct_sentence_totals")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {'-' if drop is None else drop} |")
        if spread:
            rows.append(f"| {name}: distinct totals | {_spread(spread)} |")
    return rows


def _spread(spread: dict) -> str:
    if "distinct" in spread:  # the first benchmark runs' format
        return f"{spread['distinct']} of {spread['n_utterances']} at 0.01"
    return (f"{spread['distinct_at_0.01']} of {spread['n']} at 0.01 (a continuous output with sd {spread['sd']}: "
            f"{spread['expected_distinct_at_0.01_continuous']}), {spread['distinct_exact']} exactly")


def _training_table(reports: dict) -> list[str]:
    rows = ["\ntraining\n", "| model | augmented items trained | folds' best epochs | retrained epochs (MTP, fit) | "
            "seconds, retrain |", "|---|---|---|---|---|"]
    for name, r in reports.items():
        best = ", ".join(str(f["best_epoch"]) for f in r.get("folds", []))
        seconds = sum(h.get("seconds", 0) for h in r.get("history", []) + r.get("mtp_history", []))
        epochs = r.get("retrain_epochs", {})
        rows.append(f"| {name} | {r.get('n_augmented', 0)} | {best} | {epochs.get('mtp')}, {epochs.get('fit')} | "
                    f"{seconds:.0f} |")
    return rows


def _cell(m) -> str:
    if not m or m.get("pcc") is None:
        return "-"
    return f"{m['pcc']:.3f} / {m['scc']:.3f}"


if __name__ == "__main__":
    main()
