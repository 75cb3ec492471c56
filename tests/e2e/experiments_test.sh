#!/usr/bin/env bash
# Every study of configs/experiments validates: launch/experiment.sh NAME --check runs
# `slidetrain config` on each config the study would run (synth, pre-training, every variant),
# in the full and the quick profile. Then the check is shown to fail, naming the study and the
# place, on broken copies: an unknown key in a variant, a wrong type in base.yaml, an unknown
# directive, a study that does not exist.
# Usage: experiments_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export SLIDETRAIN_BIN="$BIN"
n=0
for study in "$SRC"/configs/experiments/*/; do
  name="$(basename "$study")"
  for q in "" --quick; do
    "$SRC/launch/experiment.sh" "$name" $q --check --out "$W/out/$name" || fail "$name $q does not validate"
  done
  n=$((n + 1))
done
[[ $n -ge 5 ]] || fail "expected the five seed studies, found $n"

# Broken copies must fail with a message naming what is wrong.
expect_fail() {  # expect_fail STUDY REGEX
  local out
  if out="$(EXPERIMENTS_DIR="$W/exp" "$SRC/launch/experiment.sh" "$1" --check --out "$W/out/broken" 2>&1)"; then
    echo "$out"; fail "a broken study $1 passed the check"
  fi
  grep -Eq "$2" <<< "$out" || { echo "$out"; fail "the error does not match /$2/"; }
}
mkdir -p "$W/exp"
cp -r "$SRC/configs/experiments/optimizers" "$W/exp/unknown_key"
echo "variant typo optimizer.learning_rate=0.1" >> "$W/exp/unknown_key/study.txt"
expect_fail unknown_key "variant typo.*invalid|optimizer.learning_rate"
cp -r "$SRC/configs/experiments/batchnorm" "$W/exp/bad_type"
sed -i 's/^  epochs: .*/  epochs: many/' "$W/exp/bad_type/base.yaml"
expect_fail bad_type "train.epochs"
cp -r "$SRC/configs/experiments/batchnorm" "$W/exp/bad_directive"
echo "varient x model.name=vgg16" >> "$W/exp/bad_directive/study.txt"
expect_fail bad_directive "study.txt:[0-9]+: unknown directive 'varient'"
expect_fail no_such_study "no study 'no_such_study'"
echo "experiment configs: $n studies valid, broken copies refused"
