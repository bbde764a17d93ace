#!/usr/bin/env bash
# The main job, from a fresh clone: install (pinned), then run `ltr_nb` (default: the digits-lt suite).
# Extra arguments go to `ltr_nb`, e.g. `scripts/main.sh fmnist-lt --only joint-ib-if100,crt-if100 --seeds 0` (see `--help`, `--list`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh dev
exec .venv/bin/ltr_nb "$@"
