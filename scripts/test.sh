#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run the whole suite.
#   bash scripts/test.sh            (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Chromium for the browser test, Graphviz so both layout paths are tested.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
if [ ${#need[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
    else
        echo "no apt-get: cannot install ${need[*]}; the tests that need them will say so" >&2
    fi
fi

# npm packages for the VS Code renderer test (tests/test_html_manager.py): the standalone
# widget manager VS Code's notebooks use, and require.js, served from local files there
if command -v npm >/dev/null 2>&1; then
    npm install --silent --no-audit --no-fund --prefix .cache/npm \
        "@jupyter-widgets/html-manager@1.0.15" "requirejs@2.3.8"
else
    echo "no npm: the html-manager test will say so and skip" >&2
fi

# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,torch]"

python -m pytest "$@"
