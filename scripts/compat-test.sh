#!/usr/bin/env bash
# Client compatibility suite: real Python clients (webuiapi, sd-parsers, aaa1111) and plain HTTP cases against
# live sdapi servers started by compat/clients/conftest.py on free ports, on the embedded random test model.
# Run by `make test`; needs network once to fill compat/.venv from compat/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=compat/.venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if ! cmp -s compat/requirements.txt "$VENV/.requirements"; then
  "$VENV/bin/pip" install -q -r compat/requirements.txt
  cp compat/requirements.txt "$VENV/.requirements"
fi
if [ -z "${SDAPI_BIN:-}" ]; then
  swift build --product sdapi
  SDAPI_BIN="$(swift build --show-bin-path)/sdapi"
fi
export SDAPI_BIN
exec "$VENV/bin/python" -m pytest -c compat/clients/pytest.ini compat/clients "$@"
