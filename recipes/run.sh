#!/usr/bin/env bash
# orthoepy end-to-end recipe, Kaldi/ESPnet style: ./recipes/run.sh --corpus DIR [--exp DIR] [--stage N] [--stop-stage N] [--nj N]
# Each stage is rerunnable; a finished stage leaves a .done marker in $exp and is skipped next time.
# Built so far: stage 0 (data check) and stage 1 (features). Scorer, rationalizer and packaging stages come with later work.
set -euo pipefail

corpus="${SO762_DIR:-}"
exp=exp
stage=0
stop_stage=100
nj=$(nproc)
limit=
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --nj) nj="$2"; shift 2 ;;
    --limit) limit="--limit $2"; shift 2 ;;
    -h|--help) sed -n 2,4p "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$corpus" ] || { echo "run.sh: give --corpus DIR or set SO762_DIR" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
orthoepy="${ORTHOEPY:-$here/.venv/bin/orthoepy}"
mkdir -p "$exp"

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
  for split in train dev test; do
    # shellcheck disable=SC2086
    "$orthoepy" features --corpus "$corpus" --split "$split" --out "$exp/features/$split" --nj "$nj" $limit
  done
}

run_stage 0 data stage_data
run_stage 1 features stage_features
