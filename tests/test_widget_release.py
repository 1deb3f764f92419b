"""Issue 13: widgets are released. In a real kernel, re-running a cell (same `cellId`, as
JupyterLab sends it) closes the widget its earlier run showed; a result that is garbage
collected closes its widget."""

from __future__ import annotations

import gc

import pytest
from cells import LECTURE, run_autograd

from micrograd_magics.widget import AutogradWidget

RUNS = 100


def live_widgets() -> list[AutogradWidget]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, AutogradWidget)]


@pytest.fixture(scope="module")
def rerun_figures() -> dict:
    """A kernel that runs the lecture cell RUNS times as one cell, and one other cell."""
    from kernel_cells import kernel

    figures = {}
    with kernel() as k:
        assert k.run("%load_ext micrograd_magics")["status"] == "ok"
        for run in range(1, RUNS + 1):
            out = k.run("%%autograd\n" + LECTURE, cell_id="lecture-cell")
            assert out["status"] == "ok", out
            if run == 1:
                figures["first_output"] = out["shown"]
                figures["one"] = k.counts()
            if run == 20:
                figures["twenty"] = k.counts()
        figures["hundred"] = k.counts()
        other = k.run("%%autograd\n" + LECTURE, cell_id="another-cell")
        assert other["status"] == "ok"
        figures["two_cells"] = k.counts()
        k.run("%%autograd\n" + LECTURE, cell_id="lecture-cell")
        figures["two_cells_again"] = k.counts()
    return figures


def test_rerunning_a_cell_keeps_one_widget_open(rerun_figures):
    assert ["application/vnd.jupyter.widget-view+json", "image/svg+xml", "text/html",
            "text/plain"] in rerun_figures["first_output"]  # the widget was displayed
    after = rerun_figures["hundred"]
    assert after["open_widgets"] == 1
    assert after["widgets"] <= 3  # closed ones are freed, not just closed
    assert after["comms"] <= 3  # the widget's comm and its Layout's (was 200 after 100 runs)


def test_each_cell_keeps_its_own_widget(rerun_figures):
    assert rerun_figures["two_cells"]["open_widgets"] == 2
    assert rerun_figures["two_cells_again"]["open_widgets"] == 2


def test_kernel_memory_stays_flat_over_reruns(rerun_figures):
    grown = rerun_figures["hundred"]["rss_mb"] - rerun_figures["twenty"]["rss_mb"]
    # 80 more runs; each keeps only its small result in Out (a few tens of KB)
    assert grown < 8, rerun_figures


def test_garbage_collected_result_closes_its_widget(ip):
    result = run_autograd(ip, LECTURE)
    bundle = result._repr_mimebundle_()
    widget = result.widget()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
    assert widget.comm is not None
    del result, bundle
    gc.collect()
    assert widget.comm is None
    assert widget.layout.comm is None


def test_a_widget_taken_by_hand_stays_open(ip):
    widget = run_autograd(ip, LECTURE).widget()  # the result is gone at once
    gc.collect()
    assert widget.comm is not None and widget.step == 4


def test_a_closed_widget_is_made_anew_when_shown_again(ip):
    result = run_autograd(ip, LECTURE)
    first = result.widget()
    first_id = first.model_id
    first.close()  # as when its cell ran again
    again = result._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert again and again != first_id
    assert result.widget().comm is not None and result.widget().svg == result.svg
