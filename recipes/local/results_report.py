#!/usr/bin/env python
"""docs/results.md and its plots from the recipe's evaluation outputs (stage 4).

Usage: results_report.py --exp EXP --corpus DIR [--shipped seed0] [--out docs/results.md]
Reads EXP/eval/<model>/{dev,test}.metrics.json and .preds.json. Models named seed<N> are the main
configuration's seeds; no_* are ablations (seed 0). Nothing here selects anything: it only reports.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from orthoepy.encoder.corpus import SENTENCE_ASPECTS, load_corpus  # noqa: E402

FIELD = [  # (system, phone MSE, phone, word acc, word stress, word total, acc, compl, fluency, prosodic, total)
    ("GOPT (2022)", .085, .612, .533, .291, .549, .714, .155, .753, .760, .742),
    ("HiPAMA (2023)", .084, .616, .575, .320, .591, .730, .276, .749, .751, .754),
    ("3M (2022)", .078, .656, .598, .289, .617, .760, .325, .828, .827, .796),
    ("HierTFR (2024)", .081, .644, .622, .325, .634, .735, .513, .801, .795, .764),
    ("HierCB + ConPCO (2025)", .071, .701, .669, .437, .682, .780, .749, .830, .823, .803),
    ("HMamba (2025), best known", None, .739, .708, .366, .718, .807, .278, .848, .843, .829),
    ("MTP E-Branchformer + HCF (2509.16876)", .077, .670, None, None, None, None, None, .839, .827, None),
]
COLUMNS = ["phone", "word_accuracy", "word_stress", "word_total"] + [f"sentence_{a}" for a in SENTENCE_ASPECTS]
ABLATIONS = ["no_mtp", "no_handcrafted", "no_likelihood_gop", "no_posterior_gop", "no_whisper", "no_prosody", "no_indomain_gop"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--shipped", default="seed0", help="the model shipped as default (chosen on dev)")
    p.add_argument("--out", default="docs/results.md")
    p.add_argument("--previous-exp", help="an earlier configuration's EXP: its seeds and ablations are reported beside")
    args = p.parse_args()
    exp, out = Path(args.exp), Path(args.out)
    metrics = _load_metrics(exp / "eval")
    seeds = sorted(m for m in metrics if m.startswith("seed"))
    previous = f" --previous-exp {args.previous_exp}" if args.previous_exp else ""
    lines = ["# Results on speechocean762", "",
             f"Produced by `python recipes/local/results_report.py --exp {args.exp} --corpus $SO762_DIR --shipped {args.shipped}{previous}`",
             "from the outputs of `recipes/run.sh` (stages 2-4). Selection and calibration used the dev split only.", "",
             "These are the dev-selected, five-seed runs (v0.1, v0.2). The shipped model v0.3 was chosen and calibrated",
             "by speaker cross-validation with error-augmented training; its tables (out of fold, test, listening)",
             "are in docs/scorer.md (\"Scorer v2\").", ""]
    lines += _test_table(metrics, seeds)
    lines += _dev_table(metrics, seeds)
    lines += _ablation_table(metrics)
    if args.previous_exp:
        lines += _previous(_load_metrics(Path(args.previous_exp) / "eval"), args.previous_exp)
    lines += _pcc_vs_scc(metrics, seeds)
    lines += _mdd(metrics, seeds)
    lines += _plots(exp, metrics, args, out.parent)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def _load_metrics(root: Path) -> dict:
    return {d.name: {s: json.loads((d / f"{s}.metrics.json").read_text()) for s in ("dev", "test")
                     if (d / f"{s}.metrics.json").is_file()} for d in sorted(root.iterdir()) if d.is_dir()}


def _value(m: dict, split: str, aspect: str, key: str = "pcc", kind: str = "calibrated"):
    return m.get(split, {}).get(kind, {}).get(aspect, {}).get(key)


def _mean_std(metrics: dict, models: list[str], split: str, aspect: str, key: str = "pcc", kind: str = "calibrated") -> str:
    values = [v for v in (_value(metrics[m], split, aspect, key, kind) for m in models) if v is not None]
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _fmt(v) -> str:
    return "" if v is None else f"{v:.3f}"


def _test_table(metrics: dict, seeds: list[str]) -> list[str]:
    head = "| system | phone MSE | phone | word acc | word stress | word total | utt acc | utt compl | utt fluency | utt prosodic | utt total |"
    rows = [f"| {r[0]} | " + " | ".join(_fmt(v) for v in r[1:]) + " |" for r in FIELD]
    for kind in ("calibrated", "raw"):
        ours = [_mean_std(metrics, seeds, "test", "phone", "mse", kind)] + [
            "no test labels" if c.startswith("word") else _mean_std(metrics, seeds, "test", c, kind=kind) for c in COLUMNS]
        rows.append(f"| **orthoepy, {kind} ({len(seeds)} seeds)** | " + " | ".join(ours) + " |")
    return ["## Test split (PCC; mean ± std over seeds)", "", head, "|" + "---|" * 11, *rows, "",
            "Field rows as ../shared/anchors.md quotes them. The test split has no word labels here; word level is on dev below.",
            "Calibrated = after the isotonic maps fitted on dev (what the API returns); raw = the network's outputs.", ""]


def _dev_table(metrics: dict, seeds: list[str]) -> list[str]:
    head = "| split | " + " | ".join(COLUMNS) + " |"
    rows = [f"| dev, {kind} | " + " | ".join(_mean_std(metrics, seeds, "dev", c, kind=kind) for c in COLUMNS) + " |"
            for kind in ("raw", "calibrated")]
    return ["## Dev split (PCC; mean ± std over seeds)", "", head, "|" + "---|" * (len(COLUMNS) + 1), *rows, "",
            "Calibrated dev figures are in-sample for the isotonic maps (fitted on dev); raw ones are not.", ""]


def _ablation_table(metrics: dict) -> list[str]:
    names = ["seed0"] + [a for a in ABLATIONS if a in metrics]
    aspects = ["phone", "word_total", "sentence_accuracy", "sentence_fluency", "sentence_total"]
    head = "| model (seed 0) | " + " | ".join(f"{a} dev raw" for a in aspects) + " | " + " | ".join(f"{a} test" for a in ("phone", "sentence_total")) + " |"
    rows = []
    for n in names:
        dev = [_fmt(_value(metrics[n], "dev", a, "pcc", "raw")) for a in aspects]
        test = [_fmt(_value(metrics[n], "test", a)) for a in ("phone", "sentence_total")]
        rows.append(f"| {n} | " + " | ".join(dev + test) + " |")
    return ["## Ablations (PCC)", "", head, "|" + "---|" * (len(aspects) + 3), *rows, ""]


def _previous(metrics: dict, exp: str) -> list[str]:
    """The earlier configuration (its own features and ablations), for comparison."""
    seeds = sorted(m for m in metrics if m.startswith("seed"))
    aspects = ["phone", "sentence_accuracy", "sentence_fluency", "sentence_prosodic", "sentence_total"]
    rows = [f"| {split}, {kind} | " + " | ".join(_mean_std(metrics, seeds, split, a, kind=kind) for a in aspects) + " |"
            for split, kind in (("dev", "raw"), ("test", "calibrated"))]
    table = ["| split | " + " | ".join(aspects) + " |", "|" + "---|" * (len(aspects) + 1), *rows, ""]
    ablations = _ablation_table(metrics)[2:]
    return [f"## Previous configuration ({exp}: without the indomain_gop group; {len(seeds)} seeds)", "", *table,
            "Its ablations (seed 0; each removes one part from that configuration):", "", *ablations]


def _pcc_vs_scc(metrics: dict, seeds: list[str]) -> list[str]:
    aspects = ["phone"] + [f"sentence_{a}" for a in SENTENCE_ASPECTS]
    rows = [f"| {a} | {_mean_std(metrics, seeds, 'test', a)} | {_mean_std(metrics, seeds, 'test', a, 'scc')} |" for a in aspects]
    return ["## PCC vs SCC on test", "", "| aspect | PCC | SCC |", "|---|---|---|", *rows, ""]


def _mdd(metrics: dict, seeds: list[str]) -> list[str]:
    rows = []
    for key in ("precision", "recall", "f1"):
        values = [metrics[s]["test"]["mdd"][key] for s in seeds if "test" in metrics[s]]
        rows.append(f"| {key} | {np.mean(values):.3f} ± {np.std(values):.3f} |" if values else f"| {key} | n/a |")
    return ["## Mispronunciation detection on test (label < 0.5 is mispronounced; threshold chosen on dev)", "",
            "| | orthoepy |", "|---|---|", *rows, "", "Kaldi GOP recipe: precision 0.42, recall 0.30, F1 0.35.", ""]


def _plots(exp: Path, metrics: dict, args: argparse.Namespace, docs: Path) -> list[str]:
    preds_file = exp / "eval" / args.shipped / "test.preds.json"
    if not preds_file.is_file():
        return []
    preds = json.loads(preds_file.read_text())
    labels = {u.utt_id: u for u in load_corpus(args.corpus, "test")}
    fig, axes = plt.subplots(1, 6, figsize=(22, 3.8))
    phone_pred = [a for u in preds.values() for w in u["words"] for a in w["phones-accuracy"]]
    phone_true = [a for k in preds for a in labels[k].phone_accuracy]
    _scatter(axes[0], phone_true, phone_pred, "phone accuracy", 2)
    for ax, aspect in zip(axes[1:], SENTENCE_ASPECTS):
        _scatter(ax, [getattr(labels[k].sentence, aspect) for k in preds], [preds[k][aspect] for k in preds], aspect, 10)
    fig.tight_layout()
    fig.savefig(docs / "results_scatter.png", dpi=80)
    _calibration_plot(exp / "scorer" / args.shipped / "calibration.json", docs / "results_calibration.png")
    return ["## Plots", "", f"Predicted vs human on test ({args.shipped}):", "", "![scatter](results_scatter.png)", "",
            "Isotonic calibration maps (fitted on dev):", "", "![calibration](results_calibration.png)", ""]


def _scatter(ax, true, pred, title: str, top: float) -> None:
    ax.scatter(true, pred, s=4, alpha=0.3)
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(title=title, xlabel="human", ylabel="predicted", xlim=(0, top), ylim=(0, top))


def _calibration_plot(path: Path, out: Path) -> None:
    data = json.loads(path.read_text())
    fitted = data.get("fitted", data.get("fitted_", {}))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for aspect, info in fitted.items():
        xs, ys = info.get("x_thresholds") or [], info.get("y_thresholds") or []
        if xs:
            top = 2.0 if aspect == "phone" else 10.0
            ax.plot(np.array(xs) / top, np.array(ys) / top, label=aspect)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="raw prediction / range", ylabel="calibrated / range")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main()
