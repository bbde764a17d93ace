#!/usr/bin/env bash
# Create ./.venv (if needed) and install ltr_nb with the exact pin set in constraints.txt.
# Idempotent: re-installs only when constraints.txt, settings.ini or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=${1:-dev}
stamp=.venv/.ltr_nb-installed-$extras
want=$(cat constraints.txt settings.ini setup.py | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
start=$(date +%s)
# torch is pinned to 2.13.0: pip prefers the local CPU wheel where one is offered (find-links),
# and GitHub runners add the CPU wheel index through PIP_EXTRA_INDEX_URL; never an unpinned torch.
.venv/bin/pip install -q -c constraints.txt -e ".[$extras]"
echo "$want" > "$stamp"
echo "setup_env: installed ltr_nb[$extras] with constraints.txt in $(( $(date +%s) - start )) s"
