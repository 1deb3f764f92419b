#!/usr/bin/env bash
# Install micrograd-magics with torch and JupyterLab, start JupyterLab over this repository
# and open examples/01_first_graph.ipynb in it. Stop it with Ctrl-C (kernels stop too).
#   bash scripts/lab.sh                 (extra arguments go to `jupyter lab`)
# What it does:
#   - installs torch==2.13.0 (CPU) and then this checkout, editable, with its torch and lab
#     extras, into the Python on PATH (skipped when MICROGRAD_MAGICS_SKIP_INSTALL=1);
#   - starts JupyterLab on 127.0.0.1 on a free port with a random token (--allow-root when
#     run as root), its root folder this repository; its log goes to a file named below;
#   - opens the notebook in a browser when there is a display (never when
#     MICROGRAD_MAGICS_NO_BROWSER=1), and prints, as its last line, the URL that opens the
#     notebook (token included): open that in a browser yourself where none was started.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
notebook="examples/01_first_graph.ipynb"

if [ "${MICROGRAD_MAGICS_SKIP_INSTALL:-0}" != "1" ]; then
    # torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
    python -m pip install -q "torch==2.13.0"
    python -m pip install -q -e ".[torch,lab]"
fi

port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="${JUPYTER_TOKEN:-$(python -c 'import secrets; print(secrets.token_hex(24))')}"
log=$(mktemp "${TMPDIR:-/tmp}/micrograd-magics-lab.XXXXXX.log")
args=(--no-browser --ip=127.0.0.1 "--port=$port" --ServerApp.port_retries=0
      "--IdentityProvider.token=$token" "--ServerApp.root_dir=$repo")
# Jupyter refuses to run as root without this flag (containers, fresh cloud machines)
[ "$(id -u)" -eq 0 ] && args+=(--allow-root)

# In the background so this script can wait for the server and print the URL; stdin from
# /dev/null so Ctrl-C reaches the trap below (one SIGTERM: a clean stop, kernels included)
# rather than the server's "Shut down this Jupyter server (y/[n])?" prompt.
python -m jupyter lab "${args[@]}" "$@" </dev/null >"$log" 2>&1 &
server=$!
stop() {
    trap - INT TERM EXIT
    if kill -0 "$server" 2>/dev/null; then
        echo "stopping JupyterLab ..." >&2
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "JupyterLab exited before it was ready; its log ($log):" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    if python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "$base/api/status?token=$token" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

url="$base/lab/tree/$notebook?token=$token"
if [ "${MICROGRAD_MAGICS_NO_BROWSER:-0}" != "1" ]; then
    # only where a browser can show a window: with no display, Python's webbrowser would
    # start a text browser (lynx, w3m) in this terminal
    if [ "$(uname)" = "Darwin" ] || [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
        if command -v xdg-open >/dev/null 2>&1; then
            xdg-open "$url" >/dev/null 2>&1 &
        else
            python -m webbrowser -t "$url" >/dev/null 2>&1 &
        fi
    fi
fi
echo "JupyterLab is running over $repo (log: $log). Stop it with Ctrl-C."
echo "Open $notebook:"
echo "$url"
wait "$server"
