"""The install the README gives for VS Code and Colab: a wheel built from this checkout,
installed into a fresh venv (no system site-packages, no JupyterLab, no torch), where a
real IPython shell loads the extension and runs the lecture cell.

Needs the package index (pip downloads the wheel's own dependencies: ipython, anywidget,
graphviz, graphviz-pure, traitlets); skipped when pip cannot reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from cells import LECTURE, LECTURE_GRADS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

# what a learner's first two cells do, in a real IPython shell (no kernel, no notebook)
PROBE = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
import micrograd_magics
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "micrograd_magics")
result = ip.run_cell_magic("autograd", "", sys.argv[1])
bundle = result._repr_mimebundle_()
print(json.dumps({"file": micrograd_magics.__file__, "grads": result.grads,
                  "renderer": result.renderer, "svg": "<svg" in (result.svg or ""),
                  "mimes": sorted(bundle), "a_grad": ip.user_ns["a"].grad}))
"""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)


def test_wheel_installs_and_runs_the_lecture_cell_in_plain_ipython(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheels = tmp_path / "wheels"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                 str(REPO)], env=env, cwd=tmp_path)
    if built.returncode and "network" in built.stderr.lower():
        pytest.skip(f"cannot build without the package index: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("micrograd_magics-*.whl")

    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(target)
    python = str(target / "bin" / "python")
    installed = run([python, "-m", "pip", "install", "-q", str(wheel)], env=env, cwd=tmp_path)
    if installed.returncode and ("connection" in installed.stderr.lower()
                                 or "network" in installed.stderr.lower()):
        pytest.skip(f"no package index: {installed.stderr[-300:]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = run([python, "-m", "pip", "list", "--format=json"], env=env)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"ipython", "anywidget", "graphviz", "graphviz-pure", "traitlets"} <= names, names
    assert not names & {"torch", "jupyterlab", "notebook"}, names

    # PATH without the system's `dot`: the wheel's graphviz-pure lays the graph out
    env["PATH"] = str(target / "bin")
    done = run([python, "-c", PROBE, LECTURE], env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(target), out["file"]  # the wheel, not the checkout
    assert out["a_grad"] == 6.0
    assert out["grads"] == LECTURE_GRADS
    assert out["renderer"] == "graphviz-pure" and out["svg"], out
    # no comm here: the static parts of the bundle, no widget view
    assert {"image/svg+xml", "text/html", "text/plain"} <= set(out["mimes"]), out["mimes"]
