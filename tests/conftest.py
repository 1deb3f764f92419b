"""Shared fixtures. Fixtures for the %%autograd magic tests are named ip*/shell*."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cells import clear_namespace

_IP_BASELINE: dict[int, dict[str, Any]] = {}  # id(shell) -> its user namespace after a reset


@pytest.fixture
def ip() -> Iterator:
    """A real IPython shell with micrograd_magics loaded and a fresh user namespace.

    IPython's shell is a process-wide singleton, so the fixture resets it on the way in and
    out: namespace, execution count, the extension and any `%config AutogradMagics` set.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()  # the test-friendly global shell; only the first call creates it
    shell = InteractiveShell.instance()
    _ip_fresh(shell)
    shell.run_line_magic("load_ext", "micrograd_magics")
    yield shell
    _ip_fresh(shell)


def _ip_fresh(shell) -> None:  # noqa: ANN001
    if "micrograd_magics" in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", "micrograd_magics")
    shell.config.pop("AutogradMagics", None)
    baseline = _IP_BASELINE.get(id(shell))
    if baseline is None:
        shell.reset(new_session=True)
        _IP_BASELINE[id(shell)] = dict(shell.user_ns)
    else:
        # what reset() does to the namespace, without its gc.collect() (~0.3 s a test)
        shell.user_ns.clear()
        shell.user_ns.update(baseline)
    shell.execution_count = 1
    shell.last_execution_succeeded = True
    shell.last_execution_result = None


@pytest.fixture
def shell() -> Iterator:
    """A real IPython shell with the extension loaded and an empty namespace."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()  # creates the process-wide test shell the first time only
    ip = InteractiveShell.instance()
    clear_namespace(ip)
    if "micrograd_magics" not in ip.extension_manager.loaded:
        ip.run_line_magic("load_ext", "micrograd_magics")
    yield ip
    clear_namespace(ip)
