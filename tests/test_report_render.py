"""report.html and report.md from results dicts: content, escaping, missing sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_fixtures import HOSTILE_PRODUCT, HOSTILE_SCHOOL, variants

from rce.report import executive_summary, render_html, render_markdown

VARIANTS = variants()


@pytest.fixture(scope="module")
def html() -> dict[str, str]:
    return {name: render_html(res) for name, res in VARIANTS.items()}


@pytest.fixture(scope="module")
def md() -> dict[str, str]:
    return {name: render_markdown(res) for name, res in VARIANTS.items()}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def _parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


def test_html_is_self_contained(html):
    for name, text in html.items():
        parsed = _parse(text)
        assert "script" not in parsed.tags, name
        assert not {"img", "iframe", "object", "embed", "link"} & set(parsed.tags), name
        for attr, value in parsed.attrs:
            assert not attr.startswith("on"), (name, attr)
            if attr in ("src", "href"):
                assert not (value or "").startswith(("http", "//")), (name, attr, value)
        assert "Content-Security-Policy" in text
        assert "@media print" in text and "@page" in text


def test_hostile_text_is_escaped_in_html(html):
    text = html["hostile"]
    assert "<script>alert" not in text
    assert "<img src=x" not in text and "<iframe>" not in text and "<svg onload" not in text
    assert "&lt;script&gt;alert(&#39;study&#39;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def _table_rows(markdown: str) -> list[list[str]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _cells(line: str) -> int:
    # A cell border is a pipe not preceded by a backslash.
    return len(re.findall(r"(?<!\\)\|", line)) - 1


def test_markdown_tables_survive_pipes(md):
    for name, text in md.items():
        tables = _table_rows(text)
        assert tables, name
        for table in tables:
            widths = {_cells(line) for line in table}
            assert len(widths) == 1, (name, table[0])


def test_hostile_text_is_escaped_in_markdown(md):
    text = md["hostile"]
    assert "<script>" not in text and "<img" not in text and "<svg" not in text
    assert "&lt;script&gt;" in text
    assert "\\[click\\](http://evil)" in text
    assert "\\*Path\\*" in text
    assert HOSTILE_SCHOOL not in text and HOSTILE_PRODUCT not in text


def test_sections_in_order_summary_first_appendix_last(html, md):
    text = html["complete"]
    order = [text.index(f'id="{sid}"') for sid in
             ("summary", "usage", "dose-response", "gaps", "impact", "evidence", "appendix")]
    assert order == sorted(order)
    for heading in ("A. Data sources and match rates", "B. Definitions", "C. Models",
                    "D. Balance tables", "F. Warnings"):
        assert heading in text and heading in md["complete"]
    assert md["complete"].index("## Summary") < md["complete"].index("## Technical appendix")


def test_every_required_chart_with_takeaway_and_alt(html):
    text = html["complete"]
    assert text.count('<svg role="img"') == 8
    assert text.count('class="takeaway"') == 8
    for title in ("Students using MathPath each month", "Students by months of habitual use",
                  "Percentile by months of habitual use", "Gap to White by race ethnicity",
                  "How likely is each conclusion?", "Balance before and after matching"):
        assert title in text


def test_markdown_has_the_same_figures_and_tables(html, md):
    for name in VARIANTS:
        figures_html = html[name].count('class="takeaway"')
        figures_md = md[name].count("**Figure: ")
        assert figures_html == figures_md, name
        assert html[name].count("<table>") == len(_table_rows(md[name])), name


def test_executive_summary_numbers_and_limits():
    sentences = executive_summary(VARIANTS["complete"])
    assert 1 <= len(sentences) <= 5
    joined = " ".join(sentences)
    assert "1,430 of 1,840" in joined and "1,020 (55%)" in joined
    assert "1.4 percentile points" in joined and "0.3 to 2.6" in joined
    assert "52%" in joined and "inconclusive" in joined
    assert "Main caveat" in joined
    assert "p =" not in joined and "p-value" not in joined


def test_no_impact_says_why_and_draws_no_empty_chart(html, md):
    text = html["no_impact"]
    assert "too few for a comparison group" in text
    assert "How likely is each conclusion?" not in text
    assert "Balance before and after matching</title>" not in text
    assert "too few for a comparison group" in md["no_impact"]
    summary = executive_summary(VARIANTS["no_impact"])
    assert any(s.startswith("No impact estimate") for s in summary)
    assert len(summary) <= 5


def test_all_suppressed_draws_no_empty_charts(html):
    text = html["all_suppressed"]
    assert "every bar has fewer than 10 students" in text
    assert "every month has fewer than 10 students" in text
    assert "every bin has fewer than 10 students" in text
    assert "no gaps are shown" in text
    # only the impact charts remain (they hold no small cells)
    assert text.count('<svg role="img"') == 2


def test_suppressed_values_never_rendered(html):
    # The complete fixture hides the 5- and 6-month bars and the Asian fall cells.
    text = html["complete"]
    assert "5 months: suppressed" in text and "6 months: suppressed" in text
    assert "Asian (users, fall): suppressed" in text


def test_rendering_is_deterministic():
    res = VARIANTS["complete"]
    assert render_html(res) == render_html(res)
    assert render_markdown(res) == render_markdown(res)


def test_interim_and_unlocked_plans_are_flagged():
    res = variants()["complete"]
    res["study"]["interim"] = True
    res["study"]["outcome_window"] = "winter"
    assert "interim" in executive_summary(res)[-1]
    assert "Interim results" in render_markdown(res)
    res = variants()["complete"]
    res["plan"]["locked"] = False
    assert "not locked" in executive_summary(res)[-1]


def test_probabilities_are_never_shown_as_certain(html):
    res = variants()["complete"]
    res["impact"]["probability_meaningful"] = 0.99996
    assert "is > 99%" in " ".join(executive_summary(res))
    # worse = 0.001 in the fixture: bar label and alt text say "< 1%", not "0%"
    assert "meaningfully worse &lt; 1%" in html["complete"]
    assert ">&lt; 1%<" in html["complete"]
