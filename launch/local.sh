#!/usr/bin/env bash
# N processes of one vidistill command on this machine, joined by jax.distributed on 127.0.0.1
# with CPU collectives: the multi-host code path, on a workstation or in CI.
#
#   launch/local.sh 2 vidistill train --config configs/train/image_pretrain.py:tiny,world=/tmp/w \
#       --workdir /tmp/s0
#
# The same as `vidistill launch local --num_processes N -- <command>` (vidistill/launch/local.py);
# VIDISTILL_PYTHON picks the interpreter (default: python3).
set -euo pipefail
if (( $# < 2 )) || [[ ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: launch/local.sh NUM_PROCESSES <command...>" >&2
  exit 2
fi
n="$1"; shift
exec "${VIDISTILL_PYTHON:-python3}" -m vidistill.cli launch local --num_processes="$n" -- "$@"
