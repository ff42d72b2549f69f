"""Rendering refresh and health results as text, JSON (versioned) or markdown (for CI summaries and issues).

Output is deterministic for the same results (sorted by name; JSON keys in a fixed order) apart from
``generatedAt``. Markdown stays under GitHub's 65,536-character limit for comments and issue bodies by
listing what needs attention first and summarising what does not fit.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from grantctl.maintenance._results import Evidence, HealthResult, RefreshResult, RunCounters

API_VERSION = "grantctl/v1"
MARKDOWN_LIMIT = 60_000  # below GitHub's 65,536 with room for a workflow's own header and footer
REFRESH_ORDER = ("error", "reauthorize", "failed", "refreshed", "skipped")
HEALTH_ORDER = (
    "error",
    "never-connected",
    "reauthorize",
    "revoked",
    "wrong-organization",
    "access-denied",
    "unreachable",
    "scope-drift",
    "expiring",
    "healthy",
)


# -- refresh ---------------------------------------------------------------------------------------------


def refresh_summary(results: Sequence[RefreshResult], counters: RunCounters) -> str:
    """``Refresh: 3 refreshed, 1 skipped, ...; 4 calls, 1 retry, 0 rate-limited (429).``"""
    counts: Counter[str] = Counter(result.outcome for result in results)
    parts = [
        f"{counts.get(outcome, 0)} {label}"
        for outcome, label in (
            ("refreshed", "refreshed"),
            ("skipped", "skipped"),
            ("reauthorize", "to reauthorize"),
            ("failed", "failed"),
            ("error", "errors"),
        )
    ]
    return f"Refresh: {', '.join(parts)}; {_calls(counters)}."


def render_refresh(results: Sequence[RefreshResult], counters: RunCounters, *, fmt: str, generated_at: datetime) -> str:
    """The refresh report in ``fmt`` (text, json or markdown)."""
    if fmt == "json":
        return _json(
            "RefreshReport", generated_at, _refresh_counts(results), counters, [_refresh_json(r) for r in results]
        )
    if fmt == "markdown":
        return _refresh_markdown(results, counters)
    return _refresh_text(results, counters)


def _refresh_counts(results: Sequence[RefreshResult]) -> dict[str, int]:
    counts: Counter[str] = Counter(result.outcome for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in REFRESH_ORDER}


def _refresh_json(result: RefreshResult) -> dict[str, object]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "reason": result.reason,
        "attempts": result.attempts,
        "evidence": _evidence_json(result.evidence),
    }


def _refresh_text(results: Sequence[RefreshResult], counters: RunCounters) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for result in results:
        lines.append(f"{result.outcome:<12} {result.name:<{width}}  {result.reason}")
        if result.outcome != "skipped":
            lines += [f"{'':<12}   {item}" for item in result.evidence]
    lines.append(refresh_summary(results, counters))
    return "\n".join(lines) + "\n"


def _refresh_markdown(results: Sequence[RefreshResult], counters: RunCounters) -> str:
    head = ["### grantctl refresh", "", refresh_summary(results, counters), ""]
    noteworthy = sorted(
        (r for r in results if r.outcome != "skipped"), key=lambda r: (REFRESH_ORDER.index(r.outcome), r.name)
    )
    rows = [f"| `{r.name}` | {r.outcome} | {_cell(r.reason, r.evidence)} |" for r in noteworthy]
    skipped = [r.name for r in results if r.outcome == "skipped"]
    tail = [f"{len(skipped)} skipped (not due)."] if skipped else []
    return _markdown_table(head, ["| Connection | Outcome | Details |", "|---|---|---|"], rows, tail)


# -- health ----------------------------------------------------------------------------------------------


def health_summary(results: Sequence[HealthResult], counters: RunCounters) -> str:
    """``Health: 3 connections: 2 healthy, 1 revoked; 6 calls, 0 retries, 0 rate-limited (429).``"""
    counts: Counter[str] = Counter(result.status for result in results)
    parts = [f"{counts[status]} {status}" for status in HEALTH_ORDER if counts.get(status)]
    body = ", ".join(parts) if parts else "nothing to check"
    return f"Health: {len(results)} connection(s): {body}; {_calls(counters)}."


def render_health(results: Sequence[HealthResult], counters: RunCounters, *, fmt: str, generated_at: datetime) -> str:
    """The health report in ``fmt`` (text, json or markdown)."""
    if fmt == "json":
        counts: Counter[str] = Counter(result.status for result in results)
        summary = {status: counts.get(status, 0) for status in HEALTH_ORDER}
        return _json("HealthReport", generated_at, summary, counters, [_health_json(r) for r in results])
    if fmt == "markdown":
        return _health_markdown(results, counters)
    return _health_text(results, counters)


def _health_json(result: HealthResult) -> dict[str, object]:
    return {
        "name": result.name,
        "status": result.status,
        "detail": result.detail,
        "refreshed": result.refreshed,
        "evidence": _evidence_json(result.evidence),
    }


def _health_text(results: Sequence[HealthResult], counters: RunCounters) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for result in results:
        lines.append(f"{result.status:<18} {result.name:<{width}}  {result.detail}")
        lines += [f"{'':<18}   {item}" for item in result.evidence]
    lines.append(health_summary(results, counters))
    return "\n".join(lines) + "\n"


def _health_markdown(results: Sequence[HealthResult], counters: RunCounters) -> str:
    head = ["### grantctl health", "", health_summary(results, counters), ""]
    attention = sorted((r for r in results if not r.healthy), key=lambda r: (HEALTH_ORDER.index(r.status), r.name))
    rows = [f"| `{r.name}` | {r.status} | {_cell(r.detail, r.evidence)} |" for r in attention]
    healthy = [r.name for r in results if r.healthy]
    tail = [f"{len(healthy)} healthy: {', '.join(f'`{n}`' for n in healthy)}."] if healthy else []
    return _markdown_table(head, ["| Connection | Status | Details |", "|---|---|---|"], rows, tail)


# -- shared ----------------------------------------------------------------------------------------------


def _calls(counters: RunCounters) -> str:
    retries = "retry" if counters.retries == 1 else "retries"
    return f"{counters.calls} calls, {counters.retries} {retries}, {counters.rate_limited} rate-limited (429)"


def _json(
    kind: str, generated_at: datetime, summary: dict[str, int], counters: RunCounters, items: list[dict[str, object]]
) -> str:
    document = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "generatedAt": generated_at.isoformat().replace("+00:00", "Z"),
        "summary": summary,
        "calls": counters.as_dict(),
        "connections": items,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _evidence_json(evidence: Iterable[Evidence]) -> list[dict[str, str]]:
    return [{"call": item.call, "answer": item.answer} for item in evidence]


def _cell(text: str, evidence: Sequence[Evidence]) -> str:
    lines = [_escape(text)] + [f"<sub>{_escape(str(item))}</sub>" for item in evidence]
    return "<br>".join(lines)


def _escape(text: str) -> str:
    """Safe inside a markdown table cell rendered by GitHub (no HTML, no column breaks)."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "&#124;"), ("\n", " ")):
        text = text.replace(char, entity)
    return text


def _markdown_table(head: list[str], header: list[str], rows: list[str], tail: list[str]) -> str:
    text = "\n".join(head + (header if rows else []))
    kept = 0
    for row in rows:
        if len(text) + len(row) + 200 > MARKDOWN_LIMIT:
            break
        text += "\n" + row
        kept += 1
    if kept < len(rows):
        text += f"\n\n... and {len(rows) - kept} more: run the command with `--format json` for every connection."
    for line in tail:
        room = MARKDOWN_LIMIT - len(text) - 2
        if room <= 0:
            break
        text += "\n\n" + (line if len(line) <= room else line[: max(room - 1, 0)] + "…")
    return text + "\n"
