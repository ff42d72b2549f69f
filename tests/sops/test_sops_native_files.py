"""native.write_file / read_secrets: atomic, minimal, and nothing written on failure."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
from sops_support import CLIENT_SECRET, AgeKey, state_tree

from grantctl.errors import SopsError
from grantctl.sops import (
    AgeKeyring,
    CreationRules,
    SopsUnsupported,
    load,
    loads,
    open_document,
    read_secrets,
    write_file,
)


def test_write_file_creates_then_updates_in_place(repo: Path, with_key: AgeKey) -> None:
    rules = CreationRules.load(repo / ".sops.yaml")
    path = repo / "state" / "acme-ltd.yaml"
    assert write_file(path, state_tree(), rules=rules)
    assert load(path).recipients == (with_key.recipient,)
    path.chmod(0o640)
    text = path.read_text()

    assert not write_file(path, state_tree(), rules=rules)  # unchanged: not even lastmodified moves
    assert path.read_text() == text

    changed = {**state_tree(), "consecutive_failures": 1}
    assert write_file(path, changed, rules=rules)
    assert read_secrets(path)["consecutive_failures"] == 1
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["acme-ltd.yaml"]


def test_nothing_is_written_when_anything_fails(repo: Path, age_key: AgeKey, other_key: AgeKey) -> None:
    rules = CreationRules.load(repo / ".sops.yaml")
    path = repo / "state" / "acme-ltd.yaml"
    write_file(path, state_tree(), rules=rules, keyring=AgeKeyring.from_text(age_key.path.read_text()))
    before = path.read_bytes()

    with pytest.raises(SopsError, match="cannot decrypt"):
        write_file(path, {"a": 1}, rules=rules, keyring=AgeKeyring.from_text(other_key.path.read_text()))
    with pytest.raises(SopsError, match="not supported"):
        write_file(path, {"a": object()}, rules=rules, keyring=AgeKeyring.from_text(age_key.path.read_text()))
    assert path.read_bytes() == before

    new = repo / "state" / "new.yaml"
    with pytest.raises(SopsError):
        write_file(new, {"when": {1, 2}}, rules=rules)
    with pytest.raises(SopsError, match="reserved"):
        write_file(new, {"sops": "mine"}, rules=rules)
    assert sorted(p.name for p in new.parent.iterdir()) == ["acme-ltd.yaml"]


def test_read_secrets_is_native_with_the_same_result_as_the_binary(repo: Path, with_key: AgeKey) -> None:
    rules = CreationRules.load(repo / ".sops.yaml")
    path = repo / "connections" / "acme-ltd.secrets.yaml"
    write_file(path, {"client_id": "app-1", "client_secret": CLIENT_SECRET}, rules=rules)
    from grantctl.sops import binary

    assert read_secrets(path) == binary.decrypt_file(path) == {"client_id": "app-1", "client_secret": CLIENT_SECRET}


def test_unsupported_rule_is_refused_before_anything_happens(tmp_path: Path, age_key: AgeKey) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - age: {age_key.recipient}\n    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n"
    )
    with pytest.raises(SopsUnsupported, match="other than age"):
        write_file(tmp_path / "x.yaml", {"a": 1}, rules=CreationRules.load(tmp_path / ".sops.yaml"))
    assert not (tmp_path / "x.yaml").exists()


def test_refresh_round_trip_is_fast(repo: Path, age_key: AgeKey) -> None:
    """decrypt + change the tokens + re-encrypt one state file: the budget is 2 ms (we aim well under)."""
    rules = CreationRules.load(repo / ".sops.yaml")
    path = repo / "state" / "acme-ltd.yaml"
    keyring = AgeKeyring.from_text(age_key.path.read_text())
    write_file(path, state_tree(), rules=rules, keyring=keyring)
    text = path.read_text()

    samples = []
    for round_ in range(200):
        start = time.perf_counter()
        opened = open_document(loads(text, path=path), keyring)
        tree = opened.tree
        tree["tokens"]["access_token"] = f"access-{round_}"
        tree["tokens"]["refresh_token"] = f"refresh-{round_}"
        tree["refreshed_at"] = f"2026-11-22T10:{round_ % 60:02d}:00Z"
        opened.reencrypt(tree)
        samples.append(time.perf_counter() - start)

    median_ms = statistics.median(samples) * 1000
    print(f"\nstate file round trip: median {median_ms:.3f} ms over {len(samples)} runs")
    # generous against a loaded CI machine; a typical run is ~0.5 ms
    assert median_ms < 2.0


def test_trees_sops_cannot_represent_are_refused(repo: Path, with_key: AgeKey) -> None:
    rules = CreationRules.load(repo / ".sops.yaml")
    for tree in ({"tenant": {1: "x"}}, {"big": 2**64}, {"zero": -0.0}):
        with pytest.raises(SopsError, match=r"acme-ltd\.yaml"):
            write_file(repo / "state" / "acme-ltd.yaml", tree, rules=rules)
    assert not (repo / "state" / "acme-ltd.yaml").exists()
