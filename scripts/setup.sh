#!/usr/bin/env bash
# Set up a virtual environment in .venv with synthtext and everything it needs, offline-capable
# afterwards. Safe to run again: it only installs what is missing.
#   SYNTHTEXT_VENV=path   where to put the environment (default: .venv)
#   TORCH_SPEC=...        the torch to install when none is there (default: torch==2.13.0, a CPU build
#                         where the machine provides one; install a CUDA build yourself for a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SYNTHTEXT_VENV:-.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "${pip[@]}" install "${TORCH_SPEC:-torch==2.13.0}"
fi
# .ci/constraints.txt pins every other package to the versions the suite was run with.
"${pip[@]}" install -c .ci/constraints.txt -e ".[dev]"
echo "synthtext is installed in $venv ($("$venv/bin/synthtext" --version))"
