#!/usr/bin/env bash
# The main job, from a fresh clone: install (pinned), then run `ltr_nb` (default: digits-LT, all samplers).
# Extra arguments go to `ltr_nb`, e.g. `scripts/main.sh --dataset fashion-mnist --imb_factor 100`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh dev
exec .venv/bin/ltr_nb "$@"
