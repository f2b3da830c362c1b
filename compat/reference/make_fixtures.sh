#!/usr/bin/env bash
# Regenerates every reference fixture: runs each compat/reference/gen_*.py (except the on-demand
# full-size generator) with the pinned reference Python, then the layout self-check.
#
#   REF_PY=/work/refvenv/bin/python ./compat/reference/make_fixtures.sh      (what `make fixtures` runs)
#
# Idempotent: every generator seeds itself and overwrites its own outputs with identical bytes.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."
REF_PY="${REF_PY:-/work/refvenv/bin/python}"

for gen in compat/reference/gen_*.py; do
    case "$gen" in
        */gen_full_checkpoint.py) continue ;;   # multi-GiB, on demand: `make full-checkpoint`
    esac
    echo "== $gen"
    "$REF_PY" "$gen"
done

if [ -f compat/reference/check_layout.py ]; then
    echo "== compat/reference/check_layout.py"
    "$REF_PY" compat/reference/check_layout.py
fi
