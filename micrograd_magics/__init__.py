"""micrograd-magics: `%load_ext micrograd_magics`, then `%%autograd` cells of plain arithmetic."""

from __future__ import annotations

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's hook signature
    from micrograd_magics.magic import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:  # noqa: ANN001
    from micrograd_magics.magic import unload

    unload(ipython)
