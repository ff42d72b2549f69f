"""Rendering a :class:`~grantctl.plan.Plan`: text for terminals, JSON for ``apply``, markdown for PR comments.

All three are deterministic: the same plan gives byte-identical output (no timestamps, sorted input).

- Text: Terraform style, one block per action (``  + connect  acme-ltd (Acme Ltd)``, the reason,
  indented evidence, ``apply will: ...``) and a summary line (``Plan: 2 to connect, 1 to revoke.`` or
  ``No changes. 14 connections match their grants.``). ANSI colour only when asked (the CLI asks when
  stdout is a TTY). Control characters in names are replaced, so a tenant name cannot drive the terminal.
- JSON: a versioned document (``formatVersion``) described by :func:`plan_json_schema`, the schema
  committed as ``schemas/plan.schema.json``; ``--out FILE`` saves it for ``apply``.
- Markdown: never longer than GitHub's 65,536-character comment limit; when the whole plan does not fit,
  as many whole actions as fit and a closing line counting the rest by kind. Names coming from clients
  (organisation and tenant names) are escaped so they cannot inject markup, links or @mentions.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from grantctl import __version__
from grantctl.plan import KIND_ORDER, SYMBOLS, Action, ActionKind, Evidence, Plan

if TYPE_CHECKING:
    from grantctl.desired_diff import DesiredChange, DesiredDiff

FORMAT_VERSION = 1
MARKDOWN_LIMIT = 65_536
"""GitHub rejects issue and PR comments longer than this (tfcmt#227)."""

SUMMARY_PHRASES: Mapping[ActionKind, str] = {
    "connect": "to connect",
    "reauthorize": "to reauthorize",
    "wrong-organization": "to switch organization",
    "reduce": "to reduce",
    "extend": "to extend",
    "refresh": "to refresh",
    "pin": "to pin",
    "orphan": "to revoke",
}


# --- summary -------------------------------------------------------------------------------------


def summary_line(plan: Plan) -> str:
    """``Plan: 2 to connect, 1 to extend, 1 to revoke.`` or ``No changes. 14 connections match their grants.``"""
    if not plan.has_changes:
        count = len(plan.unchanged)
        matches = "connection matches its grant" if count == 1 else "connections match their grants"
        return f"No changes. {count} {matches}."
    return f"Plan: {_counted(plan.counts, SUMMARY_PHRASES)}."


def _counted(counts: Mapping[ActionKind, int], phrases: Mapping[ActionKind, str]) -> str:
    return ", ".join(f"{counts[kind]} {phrases[kind]}" for kind in KIND_ORDER if counts.get(kind))


def _destructive_note(plan: Plan) -> str:
    count = plan.destructive_count
    actions = "action removes" if count == 1 else "actions remove"
    return f"{count} destructive {actions} access; `grantctl apply` needs --allow-destructive for them."


# --- JSON ----------------------------------------------------------------------------------------


def plan_document(plan: Plan, *, desired: DesiredDiff | None = None) -> dict[str, Any]:
    """The JSON document of ``plan`` (see :func:`plan_json_schema`); key order is fixed."""
    document: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "generatedBy": f"grantctl {__version__}",
        "summary": {
            "actions": len(plan.actions),
            "destructive": plan.destructive_count,
            "unchanged": len(plan.unchanged),
            "byKind": {kind: plan.counts[kind] for kind in KIND_ORDER},
        },
        "actions": [_action_document(action) for action in plan.actions],
        "unchanged": list(plan.unchanged),
    }
    if desired is not None:
        document["base"] = {"ref": desired.base, "commit": desired.commit}
        document["desiredChanges"] = [_change_document(change) for change in desired.changes]
    return document


def render_json(plan: Plan, *, desired: DesiredDiff | None = None) -> str:
    """The plan as JSON text (two-space indent, trailing newline): what ``--out`` saves for apply."""
    return json.dumps(plan_document(plan, desired=desired), indent=2, ensure_ascii=False) + "\n"


def _action_document(action: Action) -> dict[str, Any]:
    return {
        "connection": action.connection,
        "kind": action.kind,
        "symbol": action.symbol,
        "destructive": action.destructive,
        "provider": action.provider,
        "organization": action.organization,
        "reason": action.reason,
        "evidence": [_evidence_document(line) for line in action.evidence],
        "apply": action.apply,
        "scopes": list(action.scopes),
        "tenantId": action.tenant_id,
    }


def _evidence_document(line: Evidence) -> dict[str, Any]:
    value = list(line.value) if isinstance(line.value, tuple) else line.value
    return {"label": line.label, "value": value}


def _change_document(change: DesiredChange) -> dict[str, Any]:
    return {
        "connection": change.connection,
        "change": change.change,
        "scopesAdded": list(change.scopes_added),
        "scopesRemoved": list(change.scopes_removed),
        "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in change.fields],
    }


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`plan_document`; ``grantctl schema`` writes it to schemas/."""
    kinds = list(KIND_ORDER)
    nullable_string = {"type": ["string", "null"]}
    string_list = {"type": "array", "items": {"type": "string"}}
    return {
        "title": "grantctl plan",
        "description": "What `grantctl plan` found and what `grantctl apply` will do (formatVersion 1).",
        "type": "object",
        "required": ["formatVersion", "generatedBy", "summary", "actions", "unchanged"],
        "additionalProperties": False,
        "properties": {
            "formatVersion": {"const": FORMAT_VERSION},
            "generatedBy": {"type": "string", "pattern": "^grantctl "},
            "summary": {
                "type": "object",
                "required": ["actions", "destructive", "unchanged", "byKind"],
                "additionalProperties": False,
                "properties": {
                    "actions": {"type": "integer", "minimum": 0},
                    "destructive": {"type": "integer", "minimum": 0},
                    "unchanged": {"type": "integer", "minimum": 0},
                    "byKind": {
                        "type": "object",
                        "required": kinds,
                        "additionalProperties": False,
                        "properties": {kind: {"type": "integer", "minimum": 0} for kind in kinds},
                    },
                },
            },
            "actions": {"type": "array", "items": {"$ref": "#/$defs/action"}},
            "unchanged": {**string_list, "description": "Connections whose grant matches their manifest."},
            "base": {
                "type": "object",
                "description": "The git ref `--base` compared against, and the commit it resolved to.",
                "required": ["ref", "commit"],
                "additionalProperties": False,
                "properties": {"ref": {"type": "string"}, "commit": {"type": "string", "pattern": "^[0-9a-f]{40,64}$"}},
            },
            "desiredChanges": {"type": "array", "items": {"$ref": "#/$defs/desiredChange"}},
        },
        "dependentRequired": {"base": ["desiredChanges"], "desiredChanges": ["base"]},
        "$defs": {
            "action": {
                "type": "object",
                "required": [
                    "connection",
                    "kind",
                    "symbol",
                    "destructive",
                    "provider",
                    "organization",
                    "reason",
                    "evidence",
                    "apply",
                    "scopes",
                    "tenantId",
                ],
                "additionalProperties": False,
                "properties": {
                    "connection": {"type": "string"},
                    "kind": {"enum": kinds},
                    "symbol": {"enum": sorted(set(SYMBOLS.values()))},
                    "destructive": {"type": "boolean", "description": "Apply needs --allow-destructive."},
                    "provider": {"type": "string"},
                    "organization": nullable_string,
                    "reason": {"type": "string"},
                    "evidence": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["label", "value"],
                            "additionalProperties": False,
                            "properties": {
                                "label": {"type": "string"},
                                "value": {"oneOf": [{"type": "string"}, string_list]},
                            },
                        },
                    },
                    "apply": {"type": "string", "description": "What apply will do, in words."},
                    "scopes": {**string_list, "description": "Scopes a new link asks for; empty: no link."},
                    "tenantId": {
                        **nullable_string,
                        "description": "The tenant to disconnect (wrong-organization), pin or revoke (orphan).",
                    },
                },
            },
            "desiredChange": {
                "type": "object",
                "required": ["connection", "change", "scopesAdded", "scopesRemoved", "fields"],
                "additionalProperties": False,
                "properties": {
                    "connection": {"type": "string"},
                    "change": {"enum": ["added", "removed", "changed"]},
                    "scopesAdded": string_list,
                    "scopesRemoved": string_list,
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "old", "new"],
                            "additionalProperties": False,
                            "properties": {"field": {"type": "string"}, "old": nullable_string, "new": nullable_string},
                        },
                    },
                },
            },
        },
    }


# --- text ----------------------------------------------------------------------------------------

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_COLOURS = {"+": "\x1b[32m", "~": "\x1b[33m", "-": "\x1b[31m", "-/+": "\x1b[31m", "!": "\x1b[35m"}
# C0/C1 controls and the bidi overrides that can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def render_text(plan: Plan, *, desired: DesiredDiff | None = None, color: bool = False) -> str:
    """The plan for a terminal; ``color`` adds ANSI colour (pass ``stdout.isatty()``)."""
    paint = _painter(color)
    lines: list[str] = []
    if desired is not None:
        lines += _text_desired(desired, paint)
    if plan.has_changes:
        lines += ["grantctl will perform the following actions:", ""]
        for action in plan.actions:
            lines += _text_action(action, paint)
        if plan.destructive_count:
            lines.append(_destructive_note(plan))
    lines.append(paint(_BOLD, summary_line(plan)))
    return "\n".join(lines) + "\n"


Paint = Callable[[str, str], str]


def _painter(color: bool) -> Paint:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    return paint


def _text_action(action: Action, paint: Paint) -> list[str]:
    symbol = paint(_COLOURS[action.symbol], f"{action.symbol:>3}")
    kind = paint(_BOLD, action.kind)
    organization = f" ({_clean(action.organization)})" if action.organization else ""
    lines = [f"{symbol} {kind}  {action.connection}{organization}", f"      {_clean(action.reason)}"]
    lines += [f"      {_clean(str(line))}" for line in action.evidence]
    lines += [f"      apply will: {_clean(action.apply)}", ""]
    return lines


def _text_desired(desired: DesiredDiff, paint: Paint) -> list[str]:
    header = f"Desired-state changes since {_clean(desired.base)} ({desired.commit[:12]}):"
    if not desired.changes:
        return [header, "  (none)", ""]
    symbols = {"added": "+", "removed": "-", "changed": "~"}
    lines = [header]
    for change in desired.changes:
        symbol = symbols[change.change]
        lines.append(f"  {paint(_COLOURS[symbol], symbol)} {change.connection}: {change.change}")
        lines += [f"      {_clean(detail)}" for detail in _change_details(change)]
    return [*lines, ""]


def _change_details(change: DesiredChange) -> list[str]:
    details = []
    if change.scopes_added:
        details.append(f"scopes added: [{', '.join(change.scopes_added)}]")
    if change.scopes_removed:
        details.append(f"scopes removed: [{', '.join(change.scopes_removed)}]")
    details += [str(field) for field in change.fields]
    return details


def _clean(text: str) -> str:
    return _UNSAFE.sub("?", text)


# --- markdown ------------------------------------------------------------------------------------

# Enough to stop emphasis, code, links, images and tables; "#", "-" and "+" only matter at the start
# of a line, where escaped text never stands.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CODE_SAFE = re.compile(r"^[A-Za-z0-9._:/@+=-]+$")


def render_markdown(plan: Plan, *, desired: DesiredDiff | None = None, limit: int = MARKDOWN_LIMIT) -> str:
    """The plan as a PR comment, at most ``limit`` characters (counted as GitHub does, in UTF-16 units).

    When everything does not fit, whole actions are kept in order and the rest are counted in a
    closing line that points to the full plan.
    """
    head = _md_head(plan, desired, budget=limit // 4)
    blocks = [_md_action(action) for action in plan.actions]
    if _length(head) + sum(_length(block) for block in blocks) <= limit:
        return head + "".join(blocks)
    used = _length(head)
    left = Counter(action.kind for action in plan.actions)
    kept: list[str] = []
    for action, block in zip(plan.actions, blocks, strict=True):
        left[action.kind] -= 1
        if used + _length(block) + _length(_md_tail(left)) > limit:
            left[action.kind] += 1
            break
        kept.append(block)
        used += _length(block)
    return head + "".join(kept) + _md_tail(left)


def _md_head(plan: Plan, desired: DesiredDiff | None, *, budget: int) -> str:
    parts = ["### grantctl plan\n\n", f"**{summary_line(plan)}**\n\n"]
    if plan.has_changes and plan.unchanged:
        parts.append(f"Unchanged: {len(plan.unchanged)} connection{'s' if len(plan.unchanged) != 1 else ''}.\n\n")
    if plan.destructive_count:
        parts.append(f"> [!WARNING]\n> {_destructive_note(plan)}\n\n")
    if desired is not None:
        parts.append(_md_desired(desired, budget))
    if plan.has_changes:
        parts.append("#### Actions\n\n")
    return "".join(parts)


def _md_desired(desired: DesiredDiff, budget: int) -> str:
    text = f"#### What this change asks for (since {_code(desired.base)}, {_code(desired.commit[:12])})\n\n"
    if not desired.changes:
        return text + "No change to the manifests.\n\n"
    lines = [_md_change(change) for change in desired.changes]
    kept = 0
    used = _length(text)
    for line in lines:
        if used + _length(line) > budget:
            break
        used += _length(line)
        kept += 1
    rest = len(lines) - kept
    more = f"- ... and {rest} more changed connection{'s' if rest != 1 else ''}\n" if rest else ""
    return text + "".join(lines[:kept]) + more + "\n"


def _md_change(change: DesiredChange) -> str:
    details = []
    if change.scopes_added:
        details.append(f"scopes added {_code_list(change.scopes_added)}")
    if change.scopes_removed:
        details.append(f"scopes removed {_code_list(change.scopes_removed)}")
    details += [f"{_md(f.field)} {_md(_or_none(f.old))} → {_md(_or_none(f.new))}" for f in change.fields]
    suffix = f": {'; '.join(details)}" if details else ""
    return f"- **{change.change}** {_code(change.connection)}{suffix}\n"


def _md_action(action: Action) -> str:
    organization = f" ({_md(action.organization)})" if action.organization else ""
    evidence = "".join(f"- {_md(line.label)}: {_md_value(line.value)}\n" for line in action.evidence)
    return (
        f"**`{action.symbol} {action.kind}`** {_code(action.connection)}{organization}<br>\n"
        f"{_md(action.reason)}<br>\n"
        f"**Apply will:** {_md(action.apply)}\n"
        f"<details><summary>Evidence</summary>\n\n{evidence}\n</details>\n\n"
    )


def _md_tail(left: Mapping[ActionKind, int]) -> str:
    total = sum(left.values())
    by_kind = ", ".join(f"{left[kind]} {kind}" for kind in KIND_ORDER if left.get(kind))
    return (
        f"... and {total} more action{'s' if total != 1 else ''} ({by_kind}): "
        "run `grantctl plan` locally or see the job summary\n"
    )


def _md_value(value: str | tuple[str, ...]) -> str:
    if isinstance(value, tuple):
        return _code_list(value) if value else "(none)"
    return _md(value)


def _code_list(values: Iterable[str]) -> str:
    return ", ".join(_code(value) for value in values)


def _code(text: str) -> str:
    """A code span for names made of safe characters; anything else is escaped text."""
    return f"`{text}`" if _CODE_SAFE.match(text) else _md(text)


def _md(text: str) -> str:
    """Escape text for GitHub markdown: no markup, no HTML, no @mentions, one line."""
    text = _clean(text.replace("\r", " ").replace("\n", " "))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # A word joiner after "@" keeps a client-chosen name such as "@org/team" from pinging anyone.
    return text.replace("@", "@\u2060")


def _or_none(value: str | None) -> str:
    return "(none)" if value is None else value


def _length(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units): never less than ``len``."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


RENDERERS = ("text", "json", "markdown")

__all__ = [
    "FORMAT_VERSION",
    "MARKDOWN_LIMIT",
    "RENDERERS",
    "SUMMARY_PHRASES",
    "plan_document",
    "plan_json_schema",
    "render_json",
    "render_markdown",
    "render_text",
    "summary_line",
]
