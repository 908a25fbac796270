#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without CUDA the processes fall back to the gloo backend on the CPU.
set -euo pipefail
if (( $# < 2 )); then
    echo "usage: $0 CONFIG NUM_PROCS [train.py options]" >&2
    exit 2
fi
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$TOOLS/dist_run.sh" "$2" "$TOOLS/train.py" "$1" \
    --launcher pytorch "${@:3}"
