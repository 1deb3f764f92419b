"""The widget's front end inlined into the `text/html` output: hover, click-paths and the
backward replay in pages with no kernel (nbconvert HTML, Jupyter Book, result.save("x.html")).

The HTML carries the graph model as JSON, widget.js and widget.css as text and a small
loader (static/standalone.js); the SVG is not repeated: the loader reads the static SVG
that is already in the page. Nothing is fetched, so it works offline and from file://.
Where scripts do not run (GitHub's viewer, an e-mail) the static SVG and tables show.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import secrets
from pathlib import Path
from typing import Any

from micrograd_magics.graph import GraphModel

STATIC = Path(__file__).parent / "static"
# above this much model JSON the page keeps only the static graph: the display payload
# stays bounded (the design's ~1 MB), and a graph that big is read as a picture anyway
MAX_INLINE_MODEL = 200_000


@functools.cache
def _front_end() -> tuple[str, str, str]:
    esm, css, loader = ((STATIC / name).read_text(encoding="utf-8")
                        for name in ("widget.js", "widget.css", "standalone.js"))
    return compact_js(esm), css, loader


def compact_js(source: str) -> str:
    """The front end without its comment lines and indentation: every output's bundle
    carries it and IPython keeps every bundle in its history (half the bytes). Only whole
    comment lines go (a line that starts with `//`, or a `/* ... */` block that starts a
    line), and line breaks stay, so the code is unchanged; widget.js has no string that
    spans lines."""
    kept, in_block = [], False
    for line in source.splitlines():
        text = line.strip()
        if in_block:
            in_block = "*/" not in text
            continue
        if text.startswith("/*"):
            in_block = "*/" not in text
            continue
        if text and not text.startswith("//"):
            kept.append(text)
    return "\n".join(kept) + "\n"


def script_json(value: Any) -> str:
    """JSON that is safe inside <script>: no `<`, `>` or `&` (as \\u escapes, which JSON
    allows only in strings, where they mean the same)."""
    # ASCII (\u escapes): CPython then keeps the text at one byte a character, and IPython 9
    # keeps every output's bundle in its history
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def new_host_id() -> str:
    return f"autograd-{secrets.token_hex(8)}"


def interactive_parts(host_id: str, model: GraphModel, renderer: str) -> str:
    """The data and the loader that make the static result with id `host_id` interactive;
    "" when the model is too big to carry."""
    model_json = script_json(model)
    if len(model_json) > MAX_INLINE_MODEL:
        return ""
    esm, css, loader = _front_end()
    if model.get("quiz"):  # the gradients to predict must not be readable in the page
        hidden = base64.b64encode(model_json.encode("utf-8")).decode("ascii")
        carried = f'"model64":{script_json(hidden)}'
    else:
        carried = f'"model":{model_json}'
    data = (f'{{{carried},"renderer":{script_json(renderer)},'
            f'"esm":{script_json(esm)},"css":{script_json(css)}}}')
    loader = loader.replace("__AUTOGRAD_ID__", host_id).replace("</", "<\\/")
    return (f'<script type="application/json" class="autograd-inline-data">{data}</script>'
            f'<script type="module">{loader}</script>')


def standalone_page(body: str, title: str) -> str:
    """A whole HTML page around one result's HTML."""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:16px;}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
