"""The text/html output carries the front end inline (see micrograd_magics.inline): what is
in it, what is not, and its bounds. The browser side is tests/test_browser_export.py."""

from __future__ import annotations

import json
import re

from cells import LECTURE, run_autograd

from micrograd_magics import inline


def inline_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" class="autograd-inline-data">(.*?)'
                      r"</script>", page, re.S)
    assert found, page[-500:]
    return json.loads(found.group(1))


def test_html_carries_model_module_and_css_but_not_a_second_svg(ip):
    result = run_autograd(ip, LECTURE)
    page = result._repr_mimebundle_()["text/html"]
    data = inline_data(page)
    assert data["model"] == json.loads(json.dumps(result.graph))
    assert "export default" in data["esm"] and ".autograd-widget" in data["css"]
    assert page.count("<svg") == 1  # the loader reuses the static SVG
    assert "http://" not in page.replace("http://www.w3.org/", "")
    assert "https://" not in page
    host = re.match(r"<div class='autograd-result' id='(autograd-[0-9a-f]+)'>", page)
    assert host and f'getElementById("{host.group(1)}")' in page


def test_script_text_cannot_close_its_script_element(ip):
    ip.run_cell("import engine")
    result = run_autograd(ip, "a = 2.0\nb = a * 3.0")
    result.graph["nodes"][0]["name"] = "</script><b>x</b>"
    page = result.static_html()
    data_part = page.split('class="autograd-inline-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_part  # so the first </script> really ends it
    assert inline_data(page)["model"]["nodes"][0]["name"] == "</script><b>x</b>"


def test_static_option_and_big_models_keep_only_the_static_html(ip, monkeypatch):
    assert "autograd-inline-data" not in run_autograd(ip, LECTURE, "--static").static_html()
    monkeypatch.setattr(inline, "MAX_INLINE_MODEL", 100)
    page = run_autograd(ip, LECTURE)._repr_mimebundle_()["text/html"]
    assert "autograd-inline-data" not in page and "<svg" in page


def test_save_html_writes_a_standalone_page(ip, tmp_path):
    result = run_autograd(ip, LECTURE)
    path = result.save(tmp_path / "graph.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>%%autograd: L</title>" in text
    assert inline_data(text)["model"]["root"] == result.graph["root"]
