#!/usr/bin/env bash
# orthoepy end-to-end recipe, Kaldi/ESPnet style: ./recipes/run.sh --corpus DIR [--exp DIR] [--stage N] [--stop-stage N] [--nj N]
#   [--seeds "0 1 2 3 4"] [--train-jobs N] [--no-indomain-gop] [--no-augment] [--validation folds|dev] [--smoke]
#   (--smoke: every stage on the 32-utterance fixture, tiny training)
# Each stage is rerunnable; a finished stage leaves a .done marker in $exp and is skipped next time.
# Stages: 0 data check, 1 features (+ error-augmented training items, $exp/augmented, and the in-domain
# recogniser's cross-fitted group, $exp/indomain), 2 scorer seeds (MTP, Lasso selection, training and calibration
# happen inside `orthoepy train-scorer`; with --validation folds, the default, each seed's 5 speaker folds run as
# separate jobs, then the model retrained on all of train is calibrated on their out-of-fold predictions),
# 3 ablations, 4 evaluation, 5 results report, 6 packaging (best seed by cross-validation, or by dev with
# --validation dev, + ONNX export, + the phone-evidence fusion fitted on dev), 7 rationalizer (examples from the
# packaged scorer's output on train, LoRA SFT, then Bounded DPO and SimPO; the Bounded DPO adapter joins the
# package), 8 rationale evaluation (faithfulness on a seeded test sample, latency, $exp/rationales.md).
# Training runs on one machine here; on a cluster, submit each `orthoepy train-scorer` line of stages 2-3 as its own job
# (e.g. Slurm: `sbatch --wrap "orthoepy train-scorer ..."`), since every training is independent.
set -euo pipefail

corpus="${SO762_DIR:-}"
exp=exp
stage=0
stop_stage=100
nj=$(nproc)
limit=
seeds="0 1 2 3 4"
train_jobs=1  # scorer trainings run side by side, one torch thread each
train_opts=""
indomain=true
indomain_epochs=6  # as v0.3 (v0.2: 8)
augment=true
augment_opts=""  # extra recipes/local/augment_features.py options
validation=folds
n_folds=5
rationalizer_opts=""  # extra train-rationalizer options
rationale_limit=100  # test utterances the rationale evaluation samples
smoke=false
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --nj) nj="$2"; shift 2 ;;
    --limit) limit="--limit $2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --train-jobs) train_jobs="$2"; shift 2 ;;
    --no-indomain-gop) indomain=false; shift ;;
    --no-augment) augment=false; shift ;;
    --validation) validation="$2"; shift 2 ;;
    --smoke) smoke=true; shift ;;
    -h|--help) sed -n 2,4p "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
here="$(cd "$(dirname "$0")/.." && pwd)"
if $smoke; then
  corpus="$here/../shared/data/speechocean762/fixture"
  seeds=0
  train_opts="--epochs 2 --mtp-epochs 1 --n-handcrafted 20"
  indomain_epochs=1
  augment_opts="--nonspeech 3"
  n_folds=3
  rationalizer_opts="--base-model tiny-random --n-sft 4 --n-pairs 2 --threads 1"
  rationale_limit=3
fi
[ -n "$corpus" ] || { echo "run.sh: give --corpus DIR or set SO762_DIR" >&2; exit 2; }
orthoepy="${ORTHOEPY:-$here/.venv/bin/orthoepy}"
mkdir -p "$exp"
feats="$exp/features"  # what the scorers train on: the front-end's store, or its copy with the indomain_gop group
augmented="$exp/augmented/features"
if $indomain; then feats="$exp/indomain/features"; augmented="$exp/augmented/features_indomain"; fi
if $augment; then
  train_opts="$train_opts --augmented-items $exp/augmented/items.json --augmented-features $augmented --augment-share 0.5"  # v0.3's share (docs/scorer.md)
fi
train_opts="$train_opts --validation $validation --folds $n_folds"

run_stage() {  # run_stage N NAME COMMAND...: runs once, marks $exp/.done.N-NAME
  local n="$1" name="$2"; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 0; fi
  if [ -e "$exp/.done.$n-$name" ]; then echo "stage $n ($name): done already, skipped"; return 0; fi
  echo "stage $n ($name)"
  "$@"
  touch "$exp/.done.$n-$name"
}

stage_data() {
  "$here/.venv/bin/python" -c "
import collections, sys
from orthoepy.encoder.corpus import load_corpus
utts = load_corpus(sys.argv[1])
print('utterances per split:', dict(collections.Counter(u.split for u in utts)))
missing = [u.utt_id for u in utts if not u.audio_path.is_file()]
sys.exit(f'{len(missing)} audio files missing, e.g. {missing[:3]}' if missing else 0)" "$corpus"
}

stage_features() {
  local split
  for split in train dev test; do
    # shellcheck disable=SC2086
    "$orthoepy" features --corpus "$corpus" --split "$split" --out "$exp/features/$split" --nj "$nj" $limit
  done
  local items_opt=() augmented_opt=()
  if $augment; then  # altered texts of train recordings and non-speech, extracted as at inference (docs/scorer.md)
    # shellcheck disable=SC2086
    "$here/.venv/bin/python" "$here/recipes/local/augment_features.py" --corpus "$corpus" --out "$exp/augmented" \
      --nj "$nj" $augment_opts
    items_opt=(--items "$exp/augmented/items.json"); augmented_opt=(--augmented "$exp/augmented")
  fi
  if $indomain; then  # Whisper frames cached once; recognisers cross-fitted over train speakers (docs/scorer.md)
    "$here/.venv/bin/python" "$here/recipes/local/cache_whisper_frames.py" --corpus "$corpus" \
      --out "$exp/indomain/whisper_frames" "${items_opt[@]}"
    "$here/.venv/bin/python" "$here/recipes/local/indomain_gop.py" --corpus "$corpus" --features "$exp/features" \
      --frames "$exp/indomain/whisper_frames" --out "$exp/indomain" --epochs "$indomain_epochs" "${augmented_opt[@]}"
  fi
}

train_one() {  # train_one NAME [train-scorer options...]: skipped when its model exists
  local name="$1"; shift
  [ -e "$exp/scorer/$name/scorer.json" ] && return 0
  mkdir -p "$exp/scorer"
  # shellcheck disable=SC2086
  "$orthoepy" train-scorer --features "$feats" --corpus "$corpus" --out "$exp/scorer/$name" --threads 1 $train_opts "$@" \
    > "$exp/scorer/$name.log" 2>&1 || { echo "training $name failed, see $exp/scorer/$name.log" >&2; return 1; }
  echo "trained $name"
}
fold_one() {  # fold_one NAME K [train-scorer options...]: one speaker fold of NAME (skipped when saved)
  local name="$1" k="$2"; shift 2
  [ -e "$exp/scorer/$name/folds/fold$k/oof.json" ] && return 0
  mkdir -p "$exp/scorer"
  # shellcheck disable=SC2086
  "$orthoepy" train-scorer --features "$feats" --corpus "$corpus" --out "$exp/scorer/$name" --threads 1 $train_opts \
    --fold "$k" "$@" > "$exp/scorer/$name.fold$k.log" 2>&1 \
    || { echo "training $name fold $k failed, see $exp/scorer/$name.fold$k.log" >&2; return 1; }
}
export -f train_one fold_one
export exp feats corpus orthoepy train_opts

train_all() {  # train_all LINE...: each line "NAME [options]"; with folds, every fold is its own job first
  if [ "$validation" = folds ]; then
    local line k
    for line in "$@"; do for k in $(seq 0 $((n_folds - 1))); do
      set -- $line; echo "$1 $k ${*:2}"
    done; done | xargs -P "$train_jobs" -I{} bash -c 'fold_one {}'
  fi
  printf '%s\n' "$@" | xargs -P "$train_jobs" -I{} bash -c 'train_one {}'
}

stage_scorer() {
  local s lines=()
  for s in $seeds; do lines+=("seed$s --seed $s"); done
  train_all "${lines[@]}"
}

stage_ablations() {
  local all="likelihood_gop,posterior_gop,whisper,prosody" extra="" lines
  if $indomain; then extra=",indomain_gop"; fi
  lines=("no_mtp --no-mtp" "no_handcrafted --no-handcrafted"
    "no_likelihood_gop --groups posterior_gop,whisper,prosody$extra" "no_posterior_gop --groups likelihood_gop,whisper,prosody$extra"
    "no_whisper --groups likelihood_gop,posterior_gop,prosody$extra" "no_prosody --groups likelihood_gop,posterior_gop,whisper$extra")
  if $indomain; then lines+=("no_indomain_gop --groups $all"); fi
  if $augment; then lines+=("no_augment --augment-share 0"); fi  # the items are still probed out of fold
  train_all "${lines[@]}"
}

stage_evaluate() {
  local model name split
  for model in "$exp"/scorer/*/; do
    name=$(basename "$model")
    mkdir -p "$exp/eval/$name"
    for split in dev test; do
      "$orthoepy" evaluate --corpus "$corpus" --split "$split" --model "$model" --features "$feats/$split" \
        --out "$exp/eval/$name/$split.metrics.json" --predictions "$exp/eval/$name/$split.preds.json" > /dev/null
    done
  done
}

run_stage 0 data stage_data
run_stage 1 features stage_features
run_stage 2 scorer stage_scorer
run_stage 3 ablations stage_ablations
stage_report() {
  "$here/.venv/bin/python" "$here/recipes/local/results_report.py" --exp "$exp" --corpus "$corpus" --out "$exp/results.md"
}

stage_package() {  # the seed with the best cross-validated (or dev) score, with its ONNX file, as a model directory
  local best
  best=$("$here/.venv/bin/python" -c "
import json, pathlib, sys
from orthoepy.encoder.scorer.train import selection_score
def score(d):
    r = json.loads((d / 'training_report.json').read_text())
    if 'cv' in r:  # mean out-of-fold PCC of phone, word total and sentence total (raw network outputs)
        raw = {('phone_accuracy' if k == 'phone' else k): v['pcc'] for k, v in r['cv']['raw'].items()}
        return selection_score(raw, 0.0)
    return max(h['selection_score'] for h in r['history'])
print(max(pathlib.Path(sys.argv[1]).glob('seed*/'), key=score))" "$exp/scorer")
  rm -rf "$exp/package" && mkdir -p "$exp/package"
  cp -r "$best" "$exp/package/default"
  "$orthoepy" export-onnx --model "$exp/package/default"
  # the phone-evidence fusion, fitted on the dev speakers the packaged network never trained on (docs/scorer.md)
  "$here/.venv/bin/python" "$here/recipes/local/phone_evidence.py" gather --corpus "$corpus" --split dev \
    --model "$exp/package/default" --out "$exp/phone_evidence/dev.json" --nj "$nj"
  "$here/.venv/bin/python" "$here/recipes/local/phone_evidence.py" fit --rows "$exp/phone_evidence/dev.json" \
    --model "$exp/package/default" --out "$exp/phone_evidence/cv.json"
  echo "packaged $(basename "$best") -> $exp/package/default"
}

stage_rationalizer() {  # trained on the packaged scorer's phone states and outputs; ships the Bounded DPO adapter
  # shellcheck disable=SC2086
  "$orthoepy" train-rationalizer --features "$feats" --corpus "$corpus" --scorer "$exp/package/default" \
    --out "$exp/rationalizer" $rationalizer_opts
  rm -rf "$exp/package/default/rationalizer"
  cp -r "$exp/rationalizer/bounded_dpo" "$exp/package/default/rationalizer"
}

stage_rationale_eval() {
  local systems=() name
  for name in sft bounded_dpo simpo; do
    [ -d "$exp/rationalizer/$name" ] && systems+=(--rationalizer "$name=$exp/rationalizer/$name")
  done
  mkdir -p "$exp/rationales"
  "$orthoepy" evaluate-rationales --corpus "$corpus" --split test --model "$exp/package/default" --features "$feats/test" \
    "${systems[@]}" --rationalizer rubric --limit "$rationale_limit" --out "$exp/rationales/test.json"
  "$here/.venv/bin/python" "$here/recipes/local/rationales_report.py" --eval "$exp/rationales/test.json" \
    --training "$exp/rationalizer/training_report.json" --out "$exp/rationales.md"
}

run_stage 4 evaluate stage_evaluate
run_stage 5 report stage_report
run_stage 6 package stage_package
run_stage 7 rationalizer stage_rationalizer
run_stage 8 rationale_eval stage_rationale_eval
