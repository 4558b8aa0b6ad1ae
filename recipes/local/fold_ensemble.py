#!/usr/bin/env python
"""A scorer whose network is the mean of the cross-validation folds' networks (a fold ensemble).

The bundle (feature scaler, handcrafted selection, calibration maps, MDD threshold, front-end configuration and
in-domain recogniser) comes from --bundle, a model directory trained with the same plan; the networks from
--folds, a `train-scorer --validation folds` output whose folds/fold<k>/model.pt were kept. The calibration was
fitted on the folds' own out-of-fold outputs, i.e. on single members, which the ensemble's mean resembles but
does not equal. Then `orthoepy export-onnx --model OUT` and `orthoepy evaluate --split dev ...` compare it.

    python recipes/local/fold_ensemble.py --bundle fusion/models/default --folds /work/exp5/ens --out /work/exp5/ensemble
"""
from __future__ import annotations

import argparse
from pathlib import Path

from orthoepy.encoder.scorer.model import HierarchicalScorer, ScorerEnsemble
from orthoepy.encoder.scorer.pipeline import Scorer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="model directory whose scaler, calibration and front-end are used")
    p.add_argument("--folds", required=True, help="train-scorer --validation folds output with folds/fold<k>/model.pt")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    fold_dirs = sorted(d for d in (Path(args.folds) / "folds").glob("fold*") if (d / "model.pt").is_file())
    if not fold_dirs:
        raise SystemExit(f"{args.folds}/folds has no fold networks (folds/fold<k>/model.pt); rerun the folds")
    scorer = Scorer.from_pretrained(args.bundle, backend="torch")
    scorer.model = ScorerEnsemble([HierarchicalScorer.from_pretrained(d) for d in fold_dirs])
    scorer.save_pretrained(args.out)
    print(f"{len(fold_dirs)} fold networks ({', '.join(d.name for d in fold_dirs)}) -> {args.out}")


if __name__ == "__main__":
    main()
