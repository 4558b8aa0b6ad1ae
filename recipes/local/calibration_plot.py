#!/usr/bin/env python
"""Calibration maps of one or more scorer model directories, drawn on a grid of raw outputs: raw network
output (x) against the calibrated score the API returns (y), one panel per aspect, one line per model.
A flat stretch is a plateau (many raw outputs, one score); the diagonal is no calibration.

    python recipes/local/calibration_plot.py --model v0.2=/work/exp3/scorer/seed4 \\
        --model v0.3=fusion/models/default --out docs/calibration_maps.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from orthoepy.encoder.scorer.calibration import AspectCalibrator  # noqa: E402
from orthoepy.encoder.scorer.metrics import label_range  # noqa: E402
from orthoepy.encoder.scorer.pipeline import CALIBRATION_FILE  # noqa: E402

ASPECTS = ("phone", "word_accuracy", "word_total", "sentence_accuracy", "sentence_completeness",
           "sentence_fluency", "sentence_prosodic", "sentence_total")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="NAME=model directory")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    calibrators = {name: AspectCalibrator.from_dict(json.loads((Path(directory) / CALIBRATION_FILE).read_text()))
                   for name, directory in (pair.split("=", 1) for pair in args.model)}
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5))
    for ax, aspect in zip(axes.flat, ASPECTS):
        _, top = label_range(aspect)
        grid = np.linspace(0.0, top, 401)
        for name, calibrator in calibrators.items():
            ax.plot(grid, calibrator.transform({aspect: grid})[aspect], label=name, lw=1.2)
        ax.plot([0, top], [0, top], "k:", lw=0.8)
        ax.set(title=aspect, xlim=(0, top), ylim=(0, top), xlabel="raw output", ylabel="calibrated")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
