#!/usr/bin/env bash
# Retrain every shipped backbone with the step count, batch, patch and seed its manifest records
# (data/weights/*.json: the "replay_command" of each training stage, in order), one after the other.
# DEVICE=cpu scripts/train_all.sh runs them on the CPU instead of the recorded device.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
STAGES='import json, sys
from hcd_lite.models.registry import training_stages
for stage in training_stages(json.load(open(sys.argv[1]))):
    print(stage["replay_command"])'
for manifest in data/weights/*.json; do
  "$PY" -c "$STAGES" "$manifest" | while read -r cmd; do
    [ -n "${DEVICE:-}" ] && cmd="${cmd/% --device*/ --device $DEVICE}"  # each stage ends with --device
    echo "+ $cmd"
    "$PY" -m ${cmd#python -m } </dev/null
  done
done
