#!/usr/bin/env bash
# Train every shipped backbone at once (how data/weights/ was made: on one GPU, see the
# manifests). Usage: MINUTES=6.5 DEVICE=cuda scripts/train_all.sh  -> data/weights/, runs/
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-10}
DEVICE=${DEVICE:-cpu}
EXTRA=${EXTRA:-"--batch 32 --patch 128"}
mkdir -p runs
pids=()
for spec in irn:2 irn:4 encoder_decoder:2 encoder_decoder:4 bicubic_sr:2 bicubic_sr:4 irn_sampled_z:2; do
  model=${spec%:*} scale=${spec#*:}
  python -m hcd_lite.train --model "$model" --scale "$scale" --minutes "$MINUTES" \
    --device "$DEVICE" $EXTRA > "runs/${model}_x${scale}.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
tail -n 1 runs/*.log
exit $status
