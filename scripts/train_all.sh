#!/usr/bin/env bash
# Retrain every shipped backbone with the step count, batch, patch and seed its manifest records
# (data/weights/*.json, "replay_command"), one after the other.
# DEVICE=cpu scripts/train_all.sh runs them on the CPU instead of the recorded device.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
for manifest in data/weights/*.json; do
  cmd=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["replay_command"])' "$manifest")
  [ -n "${DEVICE:-}" ] && cmd="${cmd/% --device*/ --device $DEVICE}"  # replay_command ends with --device
  echo "+ $cmd"
  "$PY" -m ${cmd#python -m }
done
