"""Signed links: issuing, verifying, tampering, expiry, scope binding, keys, and `grantctl link`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from server_helpers import NAME, SCOPES, SIGNING_KEY, AgeKey, git, manifest_text, write_repo

from grantctl.commands.link import run_link
from grantctl.errors import GrantctlError, LinkError
from grantctl.links import (
    LINK_HISTORY_LIMIT,
    NOGIT,
    UNCOMMITTED,
    ExpiredLink,
    SigningKey,
    StaleLink,
    TamperedLink,
    check_link_scopes,
    issue_link,
    load_signing_key,
    manifest_commit,
    parse_duration,
    record_link,
    scope_digest,
    seal,
    unseal,
    verify_link,
    with_link_record,
)
from grantctl.manifest import load_connection_fast
from grantctl.models import Connection
from grantctl.repo import Repo
from grantctl.state.base import MemoryStore

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY = SigningKey(SIGNING_KEY.encode(), "test")


@pytest.fixture
def repo(tmp_path: Path, age_key: AgeKey) -> Repo:
    return write_repo(
        tmp_path / "repo", public_url="https://connect.agency.example/", emulator_url=None, age_key=age_key
    )


def connection_of(repo: Repo) -> Connection:
    return load_connection_fast(repo.manifest_path(NAME))


def token_of(url: str) -> str:
    return url.rsplit("/connect/", 1)[1]


def test_link_is_public_url_connect_token_and_verifies(repo: Repo) -> None:
    issued = issue_link(repo, connection_of(repo), key=KEY, now=NOW, ttl=timedelta(days=7))

    assert issued.url.startswith("https://connect.agency.example/connect/")
    claims = verify_link(token_of(issued.url), key=KEY, now=NOW + timedelta(days=6))
    assert claims.connection == NAME
    assert claims.scope_digest == scope_digest(SCOPES)
    assert claims.expires_at == NOW + timedelta(days=7)
    assert issued.record.expires_at == NOW + timedelta(days=7)
    assert issued.record.scopes == sorted(SCOPES)
    assert issued.record.action == "connect"


def test_link_is_compact_and_url_safe(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    assert len(token) < 300
    assert all(ch.isalnum() or ch in "-_." for ch in token)


def test_default_ttl_comes_from_config(repo: Repo) -> None:
    issued = issue_link(repo, connection_of(repo), key=KEY, now=NOW)
    assert issued.expires_at - NOW == timedelta(days=7)


def test_link_expires(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW, ttl=timedelta(hours=1)).url)
    with pytest.raises(ExpiredLink) as caught:
        verify_link(token, key=KEY, now=NOW + timedelta(hours=1))
    assert caught.value.claims is not None
    assert caught.value.claims.connection == NAME


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[:-1],  # cut short
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],  # signature changed
        lambda t: ("B" if t[0] != "B" else "C") + t[1:],  # payload changed
        lambda t: t.replace(".", ""),  # no separator
        lambda t: t + ".x",  # extra part
        lambda t: "",
        lambda t: "%%%." + t.split(".")[1],
        lambda t: t + "A" * 3000,  # absurdly long
    ],
)
def test_damaged_links_are_refused(repo: Repo, damage: object) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    with pytest.raises(TamperedLink):
        verify_link(damage(token), key=KEY, now=NOW)  # type: ignore[operator]


def test_a_link_cannot_be_edited_to_name_another_connection(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["c"] = "other-client"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TamperedLink):
        verify_link(f"{forged}.{signature}", key=KEY, now=NOW)


def test_another_key_does_not_verify(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    other = SigningKey(b"another-signing-key-of-sufficient-length-123", "other")
    with pytest.raises(TamperedLink):
        verify_link(token, key=other, now=NOW)


def test_a_link_token_is_not_valid_for_another_purpose(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    with pytest.raises(TamperedLink):
        unseal(KEY, "oauth-state", token)
    assert unseal(KEY, "link", token)["c"] == NAME


def test_scope_digest_ignores_order_and_duplicates() -> None:
    assert scope_digest(["b", "a", "a"]) == scope_digest(["a", "b"])
    assert scope_digest(["a", "b"]) != scope_digest(["a", "b", "c"])


def test_link_is_stale_once_the_manifest_wants_other_scopes(repo: Repo) -> None:
    token = token_of(issue_link(repo, connection_of(repo), key=KEY, now=NOW).url)
    claims = verify_link(token, key=KEY, now=NOW)
    check_link_scopes(claims, connection_of(repo))  # unchanged: fine

    repo.manifest_path(NAME).write_text(manifest_text(scopes=list(reversed(SCOPES))))
    check_link_scopes(claims, connection_of(repo))  # same set, other order: still fine

    repo.manifest_path(NAME).write_text(manifest_text(scopes=[*SCOPES, "accounting.contacts"]))
    with pytest.raises(StaleLink):
        check_link_scopes(claims, connection_of(repo))


def test_seal_and_unseal_round_trip() -> None:
    token = seal(KEY, "test", {"x": 1, "y": "z"})
    assert unseal(KEY, "test", token) == {"x": 1, "y": "z"}


def test_a_genuinely_signed_payload_that_is_not_a_mapping_is_refused() -> None:
    payload = base64.urlsafe_b64encode(b"[1,2]").rstrip(b"=").decode()
    mac = hmac.new(KEY.derive("test"), payload.encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(TamperedLink):
        unseal(KEY, "test", f"{payload}.{signature}")


# -- signing key ------------------------------------------------------------------------------------------


def test_signing_key_from_the_environment(repo: Repo) -> None:
    key = load_signing_key(repo, environ={"GRANTCTL_SIGNING_KEY": SIGNING_KEY})
    assert key.secret == SIGNING_KEY.encode()
    assert SIGNING_KEY not in repr(key)
    assert "GRANTCTL_SIGNING_KEY" in key.source


def test_signing_key_env_name_is_configurable(tmp_path: Path, age_key: AgeKey) -> None:
    repo = write_repo(tmp_path / "r", public_url="https://x.example", emulator_url=None, age_key=age_key)
    config = repo.root / "grantctl.yaml"
    config.write_text(config.read_text() + "links:\n  signingKeyEnv: MY_LINK_KEY\n")
    repo = Repo.load(repo.root)
    assert load_signing_key(repo, environ={"MY_LINK_KEY": SIGNING_KEY}).secret == SIGNING_KEY.encode()
    with pytest.raises(GrantctlError, match="MY_LINK_KEY"):
        load_signing_key(repo, environ={"GRANTCTL_SIGNING_KEY": SIGNING_KEY})


def test_signing_key_from_a_sops_file(tmp_path: Path, age_key: AgeKey) -> None:
    from grantctl.sops.binary import encrypt_to_file

    repo = write_repo(tmp_path / "r", public_url="https://x.example", emulator_url=None, age_key=age_key)
    sops_config = repo.root / ".sops.yaml"
    sops_config.write_text(
        sops_config.read_text() + f"  - path_regex: (^|/)secrets/[^/]+\\.yaml$\n    age: {age_key.recipient}\n"
    )
    (repo.root / "secrets").mkdir()
    encrypt_to_file({"signing_key": SIGNING_KEY}, repo.root / "secrets/signing-key.yaml", config=sops_config)
    assert SIGNING_KEY not in (repo.root / "secrets/signing-key.yaml").read_text()
    config = repo.root / "grantctl.yaml"
    config.write_text(config.read_text() + "links:\n  signingKeyFile: secrets/signing-key.yaml\n")
    repo = Repo.load(repo.root)

    key = load_signing_key(repo, environ={})
    assert key.secret == SIGNING_KEY.encode()
    assert "signing-key.yaml" in key.source
    # The environment still wins, so CI can override a repo's file.
    other = "override-key-from-the-environment-0123456789"
    assert load_signing_key(repo, environ={"GRANTCTL_SIGNING_KEY": other}).secret == other.encode()


def test_sops_file_without_signing_key_value(repo: Repo) -> None:
    path = repo.root / "key.yaml"
    path.write_text("x: 1\n")
    config = repo.root / "grantctl.yaml"
    config.write_text(config.read_text() + "links:\n  signingKeyFile: key.yaml\n")
    with pytest.raises(GrantctlError, match="signing_key"):
        load_signing_key(Repo.load(repo.root), environ={}, decrypt=lambda _: {"other": "value"})


def test_missing_signing_key_says_what_to_do(repo: Repo) -> None:
    with pytest.raises(GrantctlError) as caught:
        load_signing_key(repo, environ={})
    message = str(caught.value)
    assert "GRANTCTL_SIGNING_KEY" in message
    assert "signingKeyFile" in message


def test_configured_key_file_that_does_not_exist(repo: Repo) -> None:
    config = repo.root / "grantctl.yaml"
    config.write_text(config.read_text() + "links:\n  signingKeyFile: secrets/nope.yaml\n")
    with pytest.raises(GrantctlError, match=r"nope\.yaml"):
        load_signing_key(Repo.load(repo.root), environ={})


def test_short_key_is_refused_without_echoing_it(repo: Repo) -> None:
    with pytest.raises(GrantctlError) as caught:
        load_signing_key(repo, environ={"GRANTCTL_SIGNING_KEY": "tooShortKey123"})
    assert "tooShortKey123" not in str(caught.value)
    assert "at least" in str(caught.value)


# -- durations and commits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7w", "-1d", "1.5h", "0d", " 7d"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(GrantctlError, match="--ttl"):
        parse_duration(text, what="--ttl")


def test_manifest_commit_without_git(repo: Repo) -> None:
    assert manifest_commit(repo, NAME) == NOGIT


def test_manifest_commit_follows_git(repo: Repo) -> None:
    git(repo.root, "init", "-q")
    assert manifest_commit(repo, NAME) == UNCOMMITTED  # no commit yet
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "first")
    head = git(repo.root, "rev-parse", "HEAD")
    assert manifest_commit(repo, NAME) == head
    issued = issue_link(repo, connection_of(repo), key=KEY, now=NOW)
    assert issued.record.commit == head
    assert verify_link(token_of(issued.url), key=KEY, now=NOW).commit == head

    repo.manifest_path(NAME).write_text(manifest_text(scopes=[*SCOPES, "accounting.contacts"]))
    assert manifest_commit(repo, NAME) == UNCOMMITTED  # the link would stand for an unreviewed manifest


# -- link history ---------------------------------------------------------------------------------------------


def test_link_history_is_appended_and_capped(repo: Repo) -> None:
    store = MemoryStore()
    connection = connection_of(repo)
    for day in range(LINK_HISTORY_LIMIT + 3):
        record = issue_link(repo, connection, key=KEY, now=NOW + timedelta(days=day), commit="abc").record
        grant = record_link(store, connection, record)
    assert len(grant.links) == LINK_HISTORY_LIMIT
    assert grant.links[-1].issued_at == NOW + timedelta(days=LINK_HISTORY_LIMIT + 2)
    assert store.read_grant(NAME) == grant
    assert grant.tenant is None  # recording a link does not make a connection


def test_with_link_record_keeps_the_grant(repo: Repo) -> None:
    connection = connection_of(repo)
    record = issue_link(repo, connection, key=KEY, now=NOW, commit="abc").record
    grant = with_link_record(None, connection, record)
    assert grant.connection == NAME
    assert grant.provider == "xero"
    assert grant.links == [record]


# -- grantctl link --------------------------------------------------------------------------------------------


def test_run_link_prints_only_the_link_on_stdout(repo: Repo, signing_key: SigningKey) -> None:
    outcome = run_link(repo, NAME, ttl="3d", now=NOW)

    assert outcome.exit_code == 0
    assert outcome.output.startswith("https://connect.agency.example/connect/")
    assert "\n" not in outcome.output.strip()
    notes = "\n".join(outcome.notes)
    assert "connect link for Acme Ltd" in notes
    assert "2026-12-04 09:30" in notes
    claims = verify_link(token_of(outcome.output), key=KEY, now=NOW)
    assert claims.expires_at == NOW + timedelta(days=3)
    for text in (outcome.output, notes):
        assert SIGNING_KEY not in text


def test_run_link_unknown_connection(repo: Repo, signing_key: SigningKey) -> None:
    with pytest.raises(GrantctlError, match="no connection 'nobody'"):
        run_link(repo, "nobody", ttl=None, now=NOW)


def test_run_link_bad_ttl(repo: Repo, signing_key: SigningKey) -> None:
    with pytest.raises(GrantctlError, match="--ttl"):
        run_link(repo, NAME, ttl="soon", now=NOW)


def test_run_link_without_a_key(repo: Repo) -> None:
    with pytest.raises(GrantctlError, match="GRANTCTL_SIGNING_KEY"):
        run_link(repo, NAME, ttl=None, now=NOW)


def test_link_error_is_a_grantctl_error() -> None:
    assert issubclass(TamperedLink, LinkError)
    assert issubclass(ExpiredLink, LinkError)
    assert issubclass(StaleLink, LinkError)


def test_links_issued_at_the_same_instant_differ(repo: Repo) -> None:
    first = issue_link(repo, connection_of(repo), key=KEY, now=NOW, commit="abc")
    second = issue_link(repo, connection_of(repo), key=KEY, now=NOW, commit="abc")
    assert first.url != second.url
    assert first.record == second.record
