#!/usr/bin/env bash
# Install micrograd-magics with torch and JupyterLab, then open the first example.
#   bash scripts/lab.sh                 (extra arguments go to `jupyter lab`)
set -euo pipefail
cd "$(dirname "$0")/.."
# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[torch,lab]"
exec jupyter lab examples/01_first_graph.ipynb "$@"
