"""A real Jupyter kernel driven the way JupyterLab drives it: each execute request carries
the cell's id in its metadata (`cellId`). Shared by the widget-release test and
benchmarks/bench_render.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parents[1]

WIDGET_COUNTS = """\
import gc as _gc, json as _json, resource as _resource
from comm import get_comm_manager as _comms
from micrograd_magics.widget import AutogradWidget as _W
_gc.collect()
_live = [o for o in _gc.get_objects() if isinstance(o, _W)]
print(_json.dumps({"widgets": len(_live),
                   "open_widgets": sum(o.comm is not None for o in _live),
                   "comms": len(_comms().comms),
                   "rss_mb": int(open("/proc/self/statm").read().split()[1])
                             * _resource.getpagesize() / 2**20}))
"""


class Kernel:
    """One python3 kernel with the project on its path."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> dict[str, Any]:
        """Execute code as cell `cell_id`; the reply content plus the stdout it printed and
        the mime types it displayed."""
        metadata = {"cellId": cell_id, "trusted": True} if cell_id else {}
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        message = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(message)
        msg_id = message["header"]["msg_id"]
        stdout, shown = [], []
        while True:
            reply = self.client.get_iopub_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = reply["msg_type"], reply["content"]
            if kind == "stream" and body.get("name") == "stdout":
                stdout.append(body["text"])
            elif kind in ("execute_result", "display_data"):
                shown.append(sorted(body["data"]))
            elif kind == "status" and body.get("execution_state") == "idle":
                break
        while True:
            answer = self.client.get_shell_msg(timeout=timeout)
            if answer["parent_header"].get("msg_id") == msg_id:
                break
        return {**answer["content"], "stdout": "".join(stdout), "shown": shown}

    def counts(self) -> dict[str, float]:
        """Live AutogradWidgets, how many are open, the kernel's open comms and its RSS."""
        out = self.run(WIDGET_COUNTS)
        assert out["status"] == "ok", out
        return json.loads(out["stdout"].strip().splitlines()[-1])


@contextmanager
def kernel(project: Path = ROOT) -> Iterator[Kernel]:
    """A fresh kernel importing micrograd_magics from `project` (this worktree by default)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project), env.get("PYTHONPATH")]))
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(project))
    try:
        k = Kernel(manager)
        try:
            yield k
        finally:
            k.client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
