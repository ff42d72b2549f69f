"""grant_changes: what one commit changed in one state file, from the plaintext before and after."""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from audit_helpers import (
    DESIRED,
    ENC_ACCESS,
    ENC_REFRESH,
    OTHER_TENANT_ID,
    SECRET_MARKERS,
    grant_document,
    state_file_text,
)

from grantctl.audit import UNREADABLE, Change, grant_changes


def document(name: str = "acme-ltd", **fields: Any) -> dict[str, Any]:
    """A state file as parsed from one commit (tokens and sops block included)."""
    parsed: dict[str, Any] = yaml.safe_load(state_file_text(grant_document(name, **fields)))
    return parsed


def kinds(changes: tuple[Change, ...]) -> list[str]:
    return [change.kind for change in changes]


def test_a_new_state_file_says_created_with_tenant_scopes_and_who_authorised() -> None:
    changes = grant_changes(None, document())

    assert kinds(changes) == ["created", "tenant", "scopes", "authorized"]
    assert changes[1].summary == "tenant: Acme Ltd (8c5b3a1e-0000-4000-8000-000000000001)"
    assert changes[2].added == tuple(sorted(DESIRED))
    assert changes[3].summary == "authorised by Sam Lee <sam@acme.example> at 2026-12-01T10:00:00Z"


def test_an_added_scope_is_listed_as_added() -> None:
    before = document(scopes=["openid", "offline_access"])
    after = document(scopes=["openid", "offline_access", "accounting.invoices"])

    (change,) = grant_changes(before, after)

    assert change == Change("scopes", "scopes added accounting.invoices", added=("accounting.invoices",))


def test_a_refresh_only_commit_is_tokens_refreshed_whatever_the_ciphertext_and_sops_block_do() -> None:
    before = document()
    after = document(
        refreshed_at="2027-01-11T06:00:00Z",
        access_token_expires_at="2027-01-11T06:30:00Z",
        refresh_token_issued_at="2027-01-11T06:00:00Z",
    )
    after["tokens"] = {
        "access_token": ENC_ACCESS.replace("aXYx", "bmV3"),
        "refresh_token": ENC_REFRESH.replace("aXYy", "bmV3"),
    }
    after["sops"]["mac"] = "ENC[AES256_GCM,data:bmV3LW1hYw==,iv:x,tag:y,type:str]"

    assert grant_changes(before, after) == (Change("refreshed", "tokens refreshed"),)


def test_a_refresh_shows_next_to_the_other_changes_of_its_commit() -> None:
    before = document(last_health={"status": "healthy", "at": "2027-01-10T06:00:00Z"})
    after = document(
        refreshed_at="2027-01-11T06:00:00Z", last_health={"status": "healthy", "at": "2027-01-11T06:00:00Z"}
    )

    assert grant_changes(before, after) == (
        Change("health", "health checked: healthy"),
        Change("refreshed", "tokens refreshed"),
    )


def test_a_commit_that_only_re_encrypted_tokens_is_also_a_refresh() -> None:
    before, after = document(), document()
    after["tokens"] = {"access_token": ENC_ACCESS[:-1] + "x]", "refresh_token": ENC_REFRESH}

    assert grant_changes(before, after) == (Change("refreshed", "tokens refreshed"),)


def test_a_commit_that_touched_only_sops_metadata_changes_no_grant() -> None:
    before, after = document(), document()
    after["sops"]["lastmodified"] = "2027-02-01T00:00:00Z"

    assert kinds(grant_changes(before, after)) == ["unchanged"]


def test_a_tenant_change_names_both_tenants() -> None:
    after = document(tenant_id=OTHER_TENANT_ID, tenant_name="Other Ltd")

    (change,) = grant_changes(document(), after)

    assert change.kind == "tenant"
    assert change.summary == f"tenant: Acme Ltd (8c5b3a1e-0000-4000-8000-000000000001) → Other Ltd ({OTHER_TENANT_ID})"


def test_a_new_consent_by_someone_else_says_who_it_was_and_who_it_was_before() -> None:
    after = document(
        authorized_by={"user_id": "u-2", "email": "kim@acme.example", "name": "Kim Park"},
        authorized_at="2027-01-20T08:00:00Z",
        auth_event_id="ev-2",
        refreshed_at="2027-01-20T08:00:00Z",
    )

    (change,) = grant_changes(document(), after)  # no separate "tokens refreshed": the consent brought them

    assert change.summary == (
        "authorised by Kim Park <kim@acme.example> at 2027-01-20T08:00:00Z (was Sam Lee <sam@acme.example>)"
    )


def test_the_same_person_consenting_again_is_a_renewed_consent() -> None:
    after = document(authorized_at="2027-01-20T08:00:00Z", auth_event_id="ev-2")

    (change,) = grant_changes(document(), after)

    assert change.summary == "consent renewed: authorised by Sam Lee <sam@acme.example> at 2027-01-20T08:00:00Z"


def test_reauthorize_flags_set_and_cleared() -> None:
    flagged = document(reauthorize={"reason": "invalid_grant on refresh", "at": "2027-01-12T06:00:00Z"})

    assert grant_changes(document(), flagged) == (
        Change("reauthorize", "marked for reauthorization: invalid_grant on refresh"),
    )
    assert grant_changes(flagged, document()) == (Change("reauthorize", "reauthorization flag cleared"),)


def test_links_health_and_failures_are_described() -> None:
    link = {
        "issued_at": "2027-01-05T09:00:00Z",
        "action": "extend",
        "scopes": ["a", "b"],
        "expires_at": "2027-01-12T09:00:00Z",
    }
    before = document(last_health={"status": "healthy", "at": "2027-01-01T00:00:00Z"})
    after = document(
        links=[link], last_health={"status": "revoked", "at": "2027-01-06T00:00:00Z"}, consecutive_failures=2
    )

    assert [change.summary for change in grant_changes(before, after)] == [
        "link issued (extend) for 2 scope(s), expires 2027-01-12T09:00:00Z",
        "health: healthy → revoked",
        "consecutive failures: 0 → 2",
    ]


def test_a_removed_state_file_is_a_removal() -> None:
    assert kinds(grant_changes(document(), None)) == ["removed"]


def test_an_unreadable_version_is_reported_not_fatal() -> None:
    assert kinds(grant_changes(document(), UNREADABLE)) == ["unreadable"]
    assert kinds(grant_changes(UNREADABLE, document()))[0] == "created"


def test_unknown_fields_are_named_but_their_values_never_shown() -> None:
    before = document()
    after = document(client_secret="s3cr3t-value-that-must-not-leak")

    (change,) = grant_changes(before, after)

    assert change == Change("other", "other fields changed: client_secret")


def test_tokens_committed_in_plaintext_are_flagged_without_showing_them() -> None:
    leaked = document()
    leaked["tokens"] = {"access_token": ENC_ACCESS, "refresh_token": "rt-PLAINTEXT-REFRESH-TOKEN-0123456789"}

    changes = grant_changes(document(), leaked)

    assert kinds(changes) == ["refreshed", "plaintext-tokens"]
    assert "refresh_token committed unencrypted" in changes[1].summary
    assert "rt-PLAINTEXT" not in repr(changes)


def test_no_change_ever_carries_ciphertext_or_sops_metadata() -> None:
    versions = [None, document(), document(scopes=["openid"]), document(refreshed_at="2027-02-01T00:00:00Z"), None]
    text = repr([grant_changes(a, b) for a, b in itertools.pairwise(versions)])

    assert not [marker for marker in SECRET_MARKERS if marker in text]
