#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install (pinned), check notebooks are clean and the
# library is in sync with them, then run every notebook (nbdev_test) and the pytest suite,
# and verify the committed main job (ltr_nb --verify results/digits-lt).
# Real-data tests read LTR_NB_DATA (default: ../shared/data when it exists).
# Extra arguments go to nbdev_test, e.g. `scripts/test.sh --flags slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh dev
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${LTR_NB_DATA:-}" ] && [ -d ../shared/data ]; then export LTR_NB_DATA="$(cd ../shared/data && pwd)"; fi
t0=$(date +%s)
echo "== nbdev_clean / nbdev_export leave the tree unchanged; README.md rendered from nbs/index.ipynb"
before=$(git status --porcelain -- nbs ltr_nb 2>/dev/null || true)
nbdev_clean >/dev/null
nbdev_export
after=$(git status --porcelain -- nbs ltr_nb 2>/dev/null || true)
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_clean/nbdev_export changed files (clean the notebooks and export, then commit):"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi
python scripts/make_readme.py --check
echo "== nbdev_test $*"
# one notebook at a time: two trainings side by side on two cores oversubscribe the CPU threads (10x slower)
nbdev_test --timing --n_workers 1 "$@"
echo "== ltr_nb --verify results/digits-lt: the committed main job repeats on this machine (see What repeats)"
ltr_nb --verify results/digits-lt --device cpu
echo "== pytest"
python -m pytest -q --durations=15 tests
echo "test suite took $(( $(date +%s) - t0 )) s (install not counted)"
