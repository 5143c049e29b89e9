"""Inline SVG charts: accessible, deterministic, escaped, suppression shown not drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from rce.report import charts

HOSTILE = "<script>alert(1)</script> | $x$ &"


def _all_charts() -> dict[str, str]:
    return {
        "trend": charts.monthly_trend_chart(
            [{"month": "2025-09", "students_active": 120, "students_habitual": 60},
             {"month": "2025-10", "students_active": 140, "students_habitual": None,
              "suppressed": True}], alt="trend alt"),
        "bars": charts.habitual_months_chart(
            [{"months": 0, "n": 100, "suppressed": False},
             {"months": 1, "n": None, "suppressed": True},
             {"months": 2, "n": 57, "suppressed": False}], alt="bars alt", min_n=10),
        "dose": charts.dose_response_chart(
            [{"months": m, "n": 50, "mean": 40 + 2 * m, "ci_low": 37 + 2 * m,
              "ci_high": 43 + 2 * m, "suppressed": False} for m in range(4)],
            {"intercept": 40.0, "slope": 2.0}, title="Dose " + HOSTILE, alt="dose alt"),
        "forest": charts.forest_chart(
            [{"label": HOSTILE, "series": "users, spring", "estimate": -3.0, "ci_low": -6.0,
              "ci_high": 0.0},
             {"label": "| pipes |", "series": "non-users, spring", "estimate": 2.0,
              "ci_low": -1.0, "ci_high": 5.0},
             {"label": "small", "series": "users, spring", "suppressed": True}],
            title="Gaps", alt="forest alt", min_n=10),
        "love": charts.love_plot(
            [{"variable": HOSTILE, "smd_before": 0.4, "smd_after": 0.03},
             {"variable": "el", "smd_before": -0.1, "smd_after": 0.02}], alt="love alt"),
        "prob": charts.probability_bars({"worse": 0.05, "no_change": 0.3, "better": 0.65},
                                        threshold=0.75, alt="prob alt"),
        "scatter": charts.scatter_chart(
            [{"label": HOSTILE, "x": 100.0, "y": 0.1}, {"label": "B", "x": None, "y": 1.0}],
            title="Effect vs cost", alt="scatter alt"),
        "hbar": charts.bar_chart(["A", "B"], [10.5, None], suppressed=[False, True],
                                 horizontal=True, title="Cost", value_format="${:,.2f}"),
    }


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return _all_charts()


def test_every_chart_is_wellformed_accessible_svg(rendered):
    for name, svg in rendered.items():
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg"), name
        assert root.get("role") == "img"
        title_id, desc_id = root.get("aria-labelledby").split()
        ids = {el.get("id"): el for el in root.iter() if el.get("id")}
        assert ids[title_id].tag.endswith("title") and ids[title_id].text
        assert ids[desc_id].tag.endswith("desc")
        assert "viewBox" in root.attrib


def test_charts_are_deterministic():
    first, second = _all_charts(), _all_charts()
    assert first == second


def test_ids_are_unique_across_charts_on_one_page(rendered):
    ids = re.findall(r'\bid="([^"]+)"', "".join(rendered.values()))
    assert len(ids) == len(set(ids))
    # every internal reference points at an id of the same page
    refs = re.findall(r'url\(#([^)]+)\)', "".join(rendered.values()))
    assert refs and set(refs) <= set(ids)


def test_no_date_and_no_script_in_svg(rendered):
    for svg in rendered.values():
        assert "<dc:date>" not in svg
        assert "<script" not in svg.lower()
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg


def test_hostile_labels_are_text_not_markup(rendered):
    for name in ("dose", "forest", "love", "scatter"):
        assert "&lt;script&gt;" in rendered[name], name


def test_suppressed_bar_is_marked_not_drawn(rendered):
    svg = rendered["bars"]
    assert "n&lt;10" in svg
    assert "100" in svg and "57" in svg
    assert "suppressed" in rendered["forest"] or "n&lt;10" in rendered["forest"]


def test_probability_chart_labels_each_bar_and_threshold(rendered):
    svg = rendered["prob"]
    for text in ("5%", "30%", "65%", "75% decision threshold"):
        assert text in svg


def test_direct_labels_instead_of_legend(rendered):
    assert ">active<" in rendered["trend"] and ">habitual<" in rendered["trend"]
    assert ">fitted line<" in rendered["dose"]
    assert "not shown (no estimate): B" in rendered["scatter"]


def test_caller_rcparams_do_not_change_the_output():
    import matplotlib

    before = charts.probability_bars({"worse": 0.1, "no_change": 0.2, "better": 0.7})
    with matplotlib.rc_context({"font.size": 22, "lines.linewidth": 9, "axes.grid": True,
                                "svg.fonttype": "path"}):
        during = charts.probability_bars({"worse": 0.1, "no_change": 0.2, "better": 0.7})
    assert during == before
