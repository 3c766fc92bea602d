#!/usr/bin/env bash
# `npm run demo`: the main job end to end on the bundled test model. Trains a
# style adapter on the stories-style "shout" set (every sentence ends in "!"),
# then continues the same prompt with the base model and with the adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${ALIGNER_SHARED:-../shared}"
MODEL="$SHARED/models/stories260K"
DATA="$SHARED/datasets/stories-style"
OUT=.cache/demo/shout.safetensors
mkdir -p "$(dirname "$OUT")"
npm run build --silent
aligner() { node out/src/cli/main.js "$@"; }
aligner train --model "$MODEL" --data "$DATA/shout.train.jsonl" --val-data "$DATA/shout.val.jsonl" --out "$OUT" --epochs 2 --seed 1
aligner inspect "$OUT"
for who in base adapter; do
  echo "--- $who:"
  args=(--model "$MODEL" --prompt "Once upon a time" --max-new-tokens 120 --temperature 0.8 --top-p 0.9 --seed 2)
  [ "$who" = adapter ] && args+=(--adapter "$OUT")
  aligner generate "${args[@]}"
done
