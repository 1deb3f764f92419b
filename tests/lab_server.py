"""A real JupyterLab server for the browser tests and the round-trip benchmark.

`start_lab(tmp, root)` runs `jupyter lab` on 127.0.0.1 (free port, random token) over the
notebooks in `root`, with every Jupyter/IPython config, runtime, workspace and settings
folder under `tmp`: no news toast, no autosave, no rebuild check, and the kernel imports
this checkout's micrograd_magics. No pytest here: benchmarks/ starts the same server.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-extensions"]

def find_chromium() -> str | None:
    """Debian's Chromium (or another Chromium/Chrome on PATH); $CHROMIUM overrides."""
    candidates = [os.environ.get("CHROMIUM", ""), "/usr/bin/chromium",
                  "/usr/lib/chromium/chromium", "chromium", "chromium-browser",
                  "google-chrome", "google-chrome-stable"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_lab(tmp: Path, root: Path) -> tuple[subprocess.Popen, Server]:
    """Start JupyterLab (which also serves Notebook 7) over root; return once it answers."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                 "JUPYTERLAB_SETTINGS_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
        Path(env[name]).mkdir()
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab"
    # no "get notified about Jupyter news?" toast over the page
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # no autosave: the copied notebook stays as it was (no outputs) for the next test
    (settings / "docmanager-extension").mkdir(parents=True)
    (settings / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    # no "is a rebuild needed?" check on page load (seconds of CPU, nothing to build)
    labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"buildCheck": False, "buildAvailable": False}))
    # the kernel imports this checkout's micrograd_magics, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("JUPYTER_TOKEN", None)

    token = secrets.token_hex(16)
    port = free_port()
    log = tmp / "server.log"
    server = Server(f"http://127.0.0.1:{port}", token, log)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2):
                return process, server
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_server(process, server)
                raise RuntimeError(f"JupyterLab did not start (exit {process.poll()}):\n"
                                   f"{server.log_tail()}") from None
            time.sleep(0.2)


def stop_server(process: subprocess.Popen, server: Server) -> None:
    """POST /api/shutdown (stops the kernels too); else SIGTERM, then SIGKILL, the group."""
    if process.poll() is None:
        try:
            request = urllib.request.Request(f"{server.base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {server.token}"})
            urllib.request.urlopen(request, timeout=5).close()
            process.wait(10)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break  # the group is gone
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def put_notebook(server: Server, name: str, cells: list[str]) -> None:
    """A notebook of these code cells, written into the server through its contents API."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    body = json.dumps({"type": "notebook", "format": "json",
                       "content": json.loads(nbformat.writes(notebook))}).encode()
    request = urllib.request.Request(f"{server.base}/api/contents/{name}", data=body,
                                     method="PUT", headers={
                                         "Authorization": f"token {server.token}",
                                         "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def set_server_theme(server: Server, theme: str) -> None:
    """JupyterLab's theme, set through the settings API before the page opens."""
    body = json.dumps({"raw": json.dumps({"theme": theme})}).encode()
    request = urllib.request.Request(
        f"{server.base}/lab/api/settings/@jupyterlab/apputils-extension:themes", data=body,
        method="PUT", headers={"Authorization": f"token {server.token}",
                               "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
