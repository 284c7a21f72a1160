"""The audit report as one self-contained HTML page (placeholder until the page lands)."""

from __future__ import annotations

import html

from dpa.audit.report import Report, as_text

__all__ = ["render"]


def render(report: Report) -> str:
    """The report as HTML."""
    return f"<!doctype html><meta charset=utf-8><pre>{html.escape(as_text(report))}</pre>\n"
