#!/usr/bin/env bash
# Two-fold cross-validation of the anomaly detector's alert level on NAB's realAWSCloudwatch:
# the files are split alternately (by name) into folds A and B; for each fold the alert level
# that scores best on it is chosen and the other fold's score at that level is the held-out
# estimate. Usage: scripts/nab-cv.sh NAB_DIR
set -euo pipefail
nab="${1:?usage: scripts/nab-cv.sh NAB_DIR}"
levels=(0.3 0.35 0.4 0.45 0.5)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --quiet --release -p vigil-cli
vigil="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/vigil"
for fold in A B; do
  mkdir -p "$work/$fold/realAWSCloudwatch" "$work/$fold/labels"
  cp "$nab/labels/combined_windows.json" "$work/$fold/labels/"
done
i=0
for f in "$nab"/realAWSCloudwatch/*.csv; do
  if (( i % 2 == 0 )); then fold=A; else fold=B; fi
  ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$work/$fold/realAWSCloudwatch/"
  i=$((i + 1))
done
declare -A score
for level in "${levels[@]}"; do
  echo "{\"alert_level\": $level}" > "$work/config.json"
  for fold in A B; do
    score[$fold,$level]=$("$vigil" eval nab --data "$work/$fold" --out "$work/out-$fold" \
      --config "$work/config.json" | awk '/^standard/ {print $5}')
  done
  echo "alert_level $level: fold A ${score[A,$level]}, fold B ${score[B,$level]}"
done
for pair in "A B" "B A"; do
  set -- $pair
  best=""
  for level in "${levels[@]}"; do
    if [[ -z "$best" ]] || awk "BEGIN {exit !(${score[$1,$level]} > ${score[$1,$best]})}"; then
      best=$level
    fi
  done
  echo "chosen on $1: alert_level $best; held out on $2: ${score[$2,$best]}"
done
