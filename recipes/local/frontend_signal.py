#!/usr/bin/env python
"""How much signal each front-end feature group carries: ridge regression fitted on train, scored on dev.

Phone level: per-phone features (+ the canonical phone one-hot) -> phone accuracy.
Utterance level: per-phone features mean- and std-pooled over the utterance (+ the handcrafted pool) -> sentence total.
Usage: frontend_signal.py --corpus DIR --train FEATS_TRAIN --dev FEATS_DEV [--out docs/frontend_signal.json]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.store import FeatureStore
from orthoepy.encoder.phoneset import PHONE_INDEX

ALPHAS = np.logspace(-2, 4, 13)


def main() -> None:
    args = _args()
    labels = {u.utt_id: u for u in load_corpus(args.corpus)}
    train, dev = _load(FeatureStore(args.train), labels), _load(FeatureStore(args.dev), labels)
    groups = list(train["phone_blocks"])
    sets = {g: [g] for g in groups} | {"all": groups}
    rows = [{"features": "phone identity only", "total": None,
             "phone": _fit_score(train["phone_onehot"], train["phone_y"], dev["phone_onehot"], dev["phone_y"])}]
    for name, chosen in sets.items():
        rows.append({"features": name, **_evaluate(train, dev, chosen, pool=name == "all")})
    rows.append({"features": "utterance_pool", "phone": None, **_utterance_only(train, dev)})
    _print(rows)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--out")
    return p.parse_args()


def _load(store: FeatureStore, labels: dict) -> dict:
    phone_blocks: dict[str, list] = {}
    phone_ids, phone_y, utt_pool, utt_y, utt_phone_blocks = [], [], [], [], {}
    for utt_id, feats in store:
        utt = labels[utt_id]
        for g, b in feats.blocks.items():
            phone_blocks.setdefault(g, []).append(b.values)
            utt_phone_blocks.setdefault(g, []).append(np.concatenate([b.values.mean(0), b.values.std(0)]))
        phone_ids.extend(PHONE_INDEX[p.base] for p in feats.phones)
        phone_y.extend(utt.phone_accuracy)
        utt_pool.append(feats.utterance.values[0])
        utt_y.append(utt.sentence.total)
    return {
        "phone_blocks": {g: np.concatenate(v) for g, v in phone_blocks.items()},
        "phone_onehot": np.eye(len(PHONE_INDEX), dtype=np.float32)[phone_ids],
        "phone_y": np.array(phone_y), "utt_blocks": {g: np.stack(v) for g, v in utt_phone_blocks.items()},
        "utt_pool": np.stack(utt_pool), "utt_y": np.array(utt_y),
    }


def _fit_score(x_train, y_train, x_dev, y_dev) -> dict:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(np.nan_to_num(x_train), y_train)
    pred = model.predict(np.nan_to_num(x_dev))
    return {"pcc": round(float(pearsonr(pred, y_dev)[0]), 3), "scc": round(float(spearmanr(pred, y_dev)[0]), 3)}


def _phone_matrix(d: dict, groups: list[str]) -> np.ndarray:
    return np.concatenate([d["phone_onehot"]] + [d["phone_blocks"][g] for g in groups], axis=1)


def _utterance_matrix(d: dict, groups: list[str], pool: bool) -> np.ndarray:
    return np.concatenate([d["utt_blocks"][g] for g in groups] + ([d["utt_pool"]] if pool else []), axis=1)


def _evaluate(train: dict, dev: dict, groups: list[str], pool: bool) -> dict:
    phone = _fit_score(_phone_matrix(train, groups), train["phone_y"], _phone_matrix(dev, groups), dev["phone_y"])
    total = _fit_score(_utterance_matrix(train, groups, pool), train["utt_y"], _utterance_matrix(dev, groups, pool), dev["utt_y"])
    return {"phone": phone, "total": total}


def _utterance_only(train: dict, dev: dict) -> dict:
    return {"total": _fit_score(train["utt_pool"], train["utt_y"], dev["utt_pool"], dev["utt_y"])}


def _print(rows: list[dict]) -> None:
    print("| features | phone PCC | phone SCC | total PCC | total SCC |\n|---|---|---|---|---|")
    for r in rows:
        ph, tot = (r[k] or {"pcc": "-", "scc": "-"} for k in ("phone", "total"))
        print(f"| {r['features']} | {ph['pcc']} | {ph['scc']} | {tot['pcc']} | {tot['scc']} |")


if __name__ == "__main__":
    main()
