#!/usr/bin/env bash
# bash tools/dist_run.sh SCRIPT GPUS [SCRIPT args...] - what dist_train.sh
# and dist_test.sh share. Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as
# for torchrun; PYTHON picks the interpreter.
SCRIPT=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

# torch's rendezvous store listens on PORT on the first node: a port in use
# would end in an EADDRINUSE traceback from inside torch
if [ "$NODE_RANK" = 0 ] && ! "$PYTHON" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
    echo "PORT=$PORT is already in use on this machine (another" \
        "distributed run?): set PORT to a free port, e.g." \
        "PORT=$((PORT + 1)) in front of the same command" >&2
    exit 1
fi
if [ "$NNODES" -gt 1 ]; then
    others=$(seq 0 $((NNODES - 1)) | grep -vx "$NODE_RANK" | paste -sd ' ')
    echo "node $NODE_RANK of $NNODES: waiting at $MASTER_ADDR:$PORT for" \
        "the nodes with NODE_RANK $others to join (each runs this" \
        "script with the same NNODES, MASTER_ADDR and PORT)" >&2
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" "${@:3}" --launcher pytorch
