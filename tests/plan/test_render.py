"""Text, JSON and markdown renderings of a plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from grantctl.plan import Action, Evidence, Plan, build_plan
from grantctl.plan_render import (
    MARKDOWN_LIMIT,
    plan_document,
    plan_json_schema,
    render_json,
    render_markdown,
    render_text,
    summary_line,
)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"


@pytest.fixture
def sample(make: Any) -> Plan:
    """connect, extend, reduce, wrong-organization, refresh and orphan, plus one unchanged connection."""
    return build_plan(
        [
            make.connection("a-new"),
            make.connection("b-extend"),
            make.connection("c-reduce"),
            make.connection("d-wrong", tenant_id=None),
            make.connection("e-stale"),
            make.connection("f-same"),
        ],
        {
            "b-extend": make.grant("b-extend", scopes=["openid", "email", "offline_access"]),
            "c-reduce": make.grant("c-reduce", scopes=[*make.DESIRED, "files"]),
            "d-wrong": make.grant("d-wrong", tenant_name="Wrong Co"),
            "e-stale": make.grant("e-stale", idle_days=50),
            "f-same": make.grant("f-same"),
            "g-orphan": make.grant("g-orphan", tenant_name="Gone Ltd"),
        },
        now=make.NOW,
    )


def schema_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


# --- text ----------------------------------------------------------------------------------------


def test_text_block_per_action_terraform_style(sample: Plan) -> None:
    text = render_text(sample)

    assert (
        "  + connect  a-new (Acme Ltd)\n"
        "      No client has connected yet.\n"
        "      desired: [accounting.invoices, accounting.settings.read, email, offline_access, openid]\n"
        "      apply will: issue an authorization link for the desired scopes to Sam Lee <sam@acme.example>\n"
    ) in text
    assert "\n-/+ reduce  c-reduce (Acme Ltd)\n" in text
    assert "\n  ~ extend  b-extend (Acme Ltd)\n" in text
    assert "\n  ! wrong-organization  d-wrong (Acme Ltd)\n" in text
    assert "\n  - orphan  g-orphan (Gone Ltd)\n" in text
    assert "      missing: [accounting.invoices, accounting.settings.read]\n" in text
    assert text.endswith(
        "Plan: 1 to connect, 1 to switch organization, 1 to reduce, 1 to extend, 1 to refresh, 1 to revoke.\n"
    )
    assert "3 destructive actions remove access" in text
    assert "\x1b" not in text


def test_summary_line_forms(make: Any) -> None:
    fourteen = [make.connection(f"client-{i:02d}") for i in range(14)]
    grants = {c.name: make.grant(c.name) for c in fourteen}
    one = build_plan(fourteen[:1], {"client-00": make.grant("client-00")}, now=make.NOW)
    mixed = build_plan(
        [make.connection("a"), make.connection("b"), make.connection("c"), make.connection("d")],
        {"b": make.grant("b", scopes=["openid"]), "x": make.grant("x")},
        now=make.NOW,
    )

    assert summary_line(build_plan(fourteen, grants, now=make.NOW)) == "No changes. 14 connections match their grants."
    assert summary_line(one) == "No changes. 1 connection matches its grant."
    assert summary_line(mixed) == "Plan: 3 to connect, 1 to extend, 1 to revoke."


def test_colour_only_when_asked(sample: Plan) -> None:
    coloured = render_text(sample, color=True)

    assert "\x1b[32m  +\x1b[0m \x1b[1mconnect\x1b[0m  a-new" in coloured
    assert "\x1b[31m-/+\x1b[0m" in coloured
    assert "\x1b" not in render_text(sample, color=False)


def test_text_neutralises_control_characters_from_tenant_names(make: Any) -> None:
    hostile = "Evil\x1b[2J\x1b]0;pwned\x07 Co\u202e"
    plan = build_plan([], {"gone": make.grant("gone", tenant_name=hostile)}, now=make.NOW)

    text = render_text(plan)

    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    assert "Evil?[2J?]0;pwned? Co?" in text


# --- JSON ----------------------------------------------------------------------------------------


def test_json_validates_against_the_committed_schema(sample: Plan) -> None:
    document = json.loads(render_json(sample))

    schema_validator().validate(document)
    assert document["formatVersion"] == 1
    assert document["generatedBy"].startswith("grantctl ")
    assert document["summary"]["byKind"]["reduce"] == 1
    assert document["summary"] == {
        "actions": 6,
        "destructive": 3,
        "unchanged": 1,
        "byKind": {"connect": 1, "reauthorize": 0, "wrong-organization": 1, "reduce": 1, "extend": 1,
                   "refresh": 1, "pin": 0, "orphan": 1},
    }  # fmt: skip
    assert document["unchanged"] == ["f-same"]
    assert "desiredChanges" not in document


def test_json_action_carries_what_apply_needs(sample: Plan, make: Any) -> None:
    actions = {a["connection"]: a for a in json.loads(render_json(sample))["actions"]}

    wrong = actions["d-wrong"]
    assert wrong["kind"] == "wrong-organization"
    assert wrong["tenantId"] == make.TENANT_ID
    assert wrong["scopes"] == sorted(make.DESIRED)
    assert {"label": "expected", "value": "Acme Ltd (not pinned; compared by name)"} in wrong["evidence"]
    assert {"label": "excess", "value": ["files"]} in actions["c-reduce"]["evidence"]
    assert actions["c-reduce"]["destructive"] is True
    assert actions["e-stale"]["scopes"] == []


def test_schema_rejects_what_apply_could_not_trust(sample: Plan) -> None:
    validator = schema_validator()
    document = plan_document(sample)
    document["actions"][0]["kind"] = "delete-everything"
    bad_version = {**plan_document(sample), "formatVersion": 2}

    assert not validator.is_valid(document)
    assert not validator.is_valid(bad_version)


def test_committed_schema_is_current() -> None:
    from grantctl.schema import render

    assert SCHEMA_FILE.read_text() == render("plan.schema.json")
    assert plan_json_schema()["properties"]["formatVersion"] == {"const": 1}


def test_json_is_byte_identical_for_the_same_inputs(make: Any, sample: Plan) -> None:
    again = build_plan(
        [make.connection(n, tenant_id=None if n == "d-wrong" else make.TENANT_ID)
         for n in ("f-same", "e-stale", "d-wrong", "c-reduce", "b-extend", "a-new")],
        {
            "g-orphan": make.grant("g-orphan", tenant_name="Gone Ltd"),
            "f-same": make.grant("f-same"),
            "e-stale": make.grant("e-stale", idle_days=50),
            "d-wrong": make.grant("d-wrong", tenant_name="Wrong Co"),
            "c-reduce": make.grant("c-reduce", scopes=[*make.DESIRED, "files"]),
            "b-extend": make.grant("b-extend", scopes=["openid", "email", "offline_access"]),
        },
        now=make.NOW,
    )  # fmt: skip

    assert render_json(again).encode() == render_json(sample).encode()
    assert render_text(again) == render_text(sample)


# --- markdown ------------------------------------------------------------------------------------


def _many_actions(count: int, organization: str = "Acme Ltd") -> Plan:
    kinds = ["connect", "extend", "reduce", "orphan", "refresh"]
    actions = tuple(
        Action(
            connection=f"client-{index:05d}",
            kind=kinds[index % len(kinds)],  # type: ignore[arg-type]
            provider="xero",
            organization=organization,
            reason="The grant lacks 1 desired scope(s).",
            evidence=(Evidence("granted", ("openid", "offline_access")), Evidence("missing", ("accounting.invoices",))),
            apply="issue an authorization link for the desired scopes to Sam Lee <sam@acme.example>",
            scopes=("accounting.invoices", "offline_access", "openid"),
        )
        for index in range(count)
    )
    return Plan(actions=actions, unchanged=())


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_markdown_small_plan_is_complete(sample: Plan) -> None:
    markdown = render_markdown(sample)

    assert markdown.startswith("### grantctl plan\n\n**Plan: 1 to connect, 1 to switch organization")
    assert "Unchanged: 1 connection." in markdown
    assert "> [!WARNING]" in markdown
    assert markdown.count("<details><summary>Evidence</summary>") == 6
    assert "more action" not in markdown


@pytest.mark.parametrize("organization", ["Acme Ltd", "Ác\u00e9 \U0001f600 Ltd"], ids=["ascii", "astral"])
def test_markdown_with_5000_actions_stays_under_the_limit(organization: str) -> None:
    plan = _many_actions(5000, organization)

    markdown = render_markdown(plan)

    assert _utf16_length(markdown) <= MARKDOWN_LIMIT
    assert _utf16_length(markdown) > MARKDOWN_LIMIT - 2000  # filled, not cut short
    kept = markdown.count("<details><summary>Evidence</summary>")
    assert markdown.count("</details>") == kept  # only whole actions
    assert 50 < kept < 5000
    last_line = markdown.rstrip("\n").rsplit("\n", 1)[-1]
    rest = 5000 - kept
    assert last_line.startswith(f"... and {rest} more actions (")
    assert last_line.endswith("): run `grantctl plan` locally or see the job summary")
    counted = sum(int(part.split()[0]) for part in last_line.split("(", 1)[1].split(")")[0].split(", "))
    assert counted == rest
    assert f"`client-{kept - 1:05d}`" in markdown
    assert f"`client-{kept:05d}`" not in markdown


def test_markdown_limit_is_exact_at_the_edge() -> None:
    plan = _many_actions(40)
    full = render_markdown(plan, limit=10**9)

    assert render_markdown(plan, limit=len(full)) == full
    truncated = render_markdown(plan, limit=len(full) - 1)
    assert len(truncated) <= len(full) - 1
    assert "... and " in truncated


def test_markdown_escapes_client_chosen_names(make: Any) -> None:
    hostile = "**Evil** [click](https://evil.example) <img src=x onerror=alert(1)> @acme/admins | `x`"
    plan = build_plan([], {"gone": make.grant("gone", tenant_name=hostile)}, now=make.NOW)

    markdown = render_markdown(plan)

    assert "<img" not in markdown
    assert "[click](" not in markdown
    assert "**Evil**" not in markdown
    assert "@acme/admins" not in markdown
    assert "\\*\\*Evil\\*\\* \\[click\\](https://evil.example) &lt;img" in markdown
    assert "@\u2060acme/admins \\| \\`x\\`" in markdown
