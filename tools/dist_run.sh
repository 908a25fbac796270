#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh (not meant to be called directly):
#   bash tools/dist_run.sh NUM_PROCS TOOL.py [TOOL.py arguments]
# runs TOOL.py on NUM_PROCS processes of this node with torchrun, this
# checkout first on the path. The interpreter is $PYTHON if set, else the
# project's venv ($MMPVG_VENV or <repo>/.venv) if it exists, else `python`.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
NPROC=$1
shift
if ! [[ $NPROC =~ ^[1-9][0-9]*$ ]]; then
    echo "error: NUM_PROCS must be a whole number >= 1 (processes on this" \
         "node, e.g. its number of GPUs), got '$NPROC'" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    VENV=${MMPVG_VENV:-$ROOT/.venv}
    if [[ -x $VENV/bin/python ]]; then PYTHON=$VENV/bin/python; else PYTHON=python; fi
fi

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$@"
