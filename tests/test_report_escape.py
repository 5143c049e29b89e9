"""Escaping of input-derived text for HTML, Markdown, matplotlib and spreadsheets."""

from __future__ import annotations

import pandas as pd
import pytest

from rce.report.escape import (
    escape_html,
    escape_markdown,
    escape_mathtext,
    neutralize_cell,
    neutralize_frame,
    plain_text,
)


def test_html_escapes_markup_and_quotes():
    out = escape_html("<script>alert('x')</script> & \"q\"")
    assert "<" not in out and ">" not in out
    assert "&lt;script&gt;" in out
    assert "&#39;" in out and "&#34;" in out and "&amp;" in out


def test_plain_text_drops_control_characters_and_newlines():
    assert plain_text("a\nb\r\nc\x00d\x1b") == "a b cd"
    assert plain_text(None) == ""
    assert plain_text(float("nan")) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("| pipes |", "\\| pipes \\|"),
        ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
        ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
        ("[click](http://evil)", "\\[click\\](http://evil)"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("12. item", "12\\. item"),
        ("gap of -1.5 points", "gap of -1.5 points"),
        ("a\\b", "a\\\\b"),
    ],
)
def test_markdown_escaping(text, expected):
    assert escape_markdown(text) == expected


def test_markdown_cell_has_no_unescaped_pipe():
    out = escape_markdown("a|b||c")
    assert all(out[i - 1] == "\\" for i, ch in enumerate(out) if ch == "|")


def test_mathtext_dollar_escaped():
    assert escape_mathtext("$5 and $6") == r"\$5 and \$6"


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r", "\uff1d"])
def test_formula_prefixes_are_neutralised(prefix):
    out = neutralize_cell(prefix + "HYPERLINK(\"http://evil\")")
    assert out.startswith("'")


def test_numbers_and_plain_text_pass_through():
    assert neutralize_cell(-3.5) == -3.5
    assert neutralize_cell(7) == 7
    assert neutralize_cell(None) is None
    assert neutralize_cell(True) is True
    assert neutralize_cell("Desert View") == "Desert View"


def test_neutralize_frame_only_touches_text():
    frame = pd.DataFrame({"school": ["=1+1", "North"], "gap": [-1.5, 2.0], "@n": [1, 2]})
    out = neutralize_frame(frame)
    assert out["school"].tolist() == ["'=1+1", "North"]
    assert out["gap"].tolist() == [-1.5, 2.0]
    assert list(out.columns) == ["school", "gap", "'@n"]
    assert frame["school"].tolist() == ["=1+1", "North"]  # caller's frame untouched
