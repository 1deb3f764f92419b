"""The README's run command, `bash scripts/lab.sh`, run as the README says.

It runs in its own process group with fresh temporary Jupyter config, runtime, data and
workspace folders; the test waits for the script's last line (the URL), checks that this
URL and the notebook it names are served with the printed token, that nothing is printed
after it, and that Ctrl-C (SIGINT to the group) stops the server. The group is killed in
`finally` whatever happened.

The install step (torch, then `pip install -e ".[torch,lab]"`) is skipped with
MICROGRAD_MAGICS_SKIP_INSTALL=1 when JupyterLab and this checkout's micrograd_magics are
importable already (scripts/test.sh installed them), so the test does not reinstall the
environment it runs in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "examples/01_first_graph.ipynb"
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/lab/tree/(\S+)\?token=([0-9a-f]+)$")


def installed_here(env: dict[str, str]) -> bool:
    """True when this Python imports jupyterlab and this checkout's micrograd_magics."""
    probe = ("import jupyterlab, micrograd_magics, pathlib, sys; "
             "print(pathlib.Path(micrograd_magics.__file__).resolve().parents[1])")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, cwd="/")
    return done.returncode == 0 and Path(done.stdout.strip()) == REPO


def stop_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_readme_run_command_serves_the_first_example(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/lab.sh" in readme  # the command this test runs

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR", "JUPYTERLAB_SETTINGS_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    env["TMPDIR"] = str(tmp_path)
    for name in ("JUPYTER_TOKEN", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        env.pop(name, None)  # no browser to open, a token of its own
    if installed_here(env):
        env["MICROGRAD_MAGICS_SKIP_INSTALL"] = "1"

    lines: list[str] = []
    process = subprocess.Popen(["bash", "scripts/lab.sh"], cwd=REPO, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + (120 if env.get("MICROGRAD_MAGICS_SKIP_INSTALL") else 900)
        while not (lines and URL.match(lines[-1].strip())):
            assert process.poll() is None, f"lab.sh exited {process.returncode}:\n{''.join(lines)}"
            assert time.monotonic() < deadline, f"no URL from lab.sh:\n{''.join(lines)}"
            time.sleep(0.2)
        url = lines[-1].strip()
        port, path, token = URL.match(url).groups()
        assert path == NOTEBOOK, url

        status, page = get(url)
        assert status == 200 and b"JupyterLab" in page, (status, page[:300])
        status, body = get(f"http://127.0.0.1:{port}/api/contents/{NOTEBOOK}?token={token}")
        contents = json.loads(body)
        assert status == 200 and contents["type"] == "notebook", contents.get("type")
        assert contents["path"] == NOTEBOOK
        # the notebook the server serves is this checkout's file: the root is the repository
        on_disk = json.loads((REPO / NOTEBOOK).read_text(encoding="utf-8"))
        assert [c["source"] for c in contents["content"]["cells"]] == [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in on_disk["cells"]]
        # a wrong token is refused: the printed token is what opens it
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"http://127.0.0.1:{port}/api/contents/{NOTEBOOK}?token=0{token}")
        assert refused.value.code == 403

        time.sleep(1.0)
        assert lines[-1].strip() == url, f"printed after the URL:\n{''.join(lines)}"

        # Ctrl-C: SIGINT to the group, as a terminal sends it; the server stops
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(30) == 130, "".join(lines)
        with pytest.raises(urllib.error.URLError):
            get(f"http://127.0.0.1:{port}/api/status?token={token}")
    finally:
        stop_group(process)
