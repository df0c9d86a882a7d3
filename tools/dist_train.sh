#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG GPUS [train.py args...]
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
