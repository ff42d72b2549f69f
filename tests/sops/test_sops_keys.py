"""Finding age keys the way sops does, and unwrapping data keys with them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sops_support import AgeKey, make_key

from grantctl.errors import SopsError
from grantctl.sops import AgeKeyring, AgeStanza
from grantctl.sops.keys import default_keys_file


def test_sops_age_key_may_hold_several_keys(age_key: AgeKey, other_key: AgeKey) -> None:
    keyring = AgeKeyring.from_environment({"SOPS_AGE_KEY": f"{age_key.secret}\n\n{other_key.secret}\n"})
    assert keyring.recipients == tuple(sorted((age_key.recipient, other_key.recipient)))


def test_all_sources_are_combined(tmp_path: Path, age_key: AgeKey, other_key: AgeKey, keys_dir: Path) -> None:
    config_home = tmp_path / "config"
    (config_home / "sops" / "age").mkdir(parents=True)
    third = make_key(keys_dir, "third")
    (config_home / "sops" / "age" / "keys.txt").write_text(third.path.read_text())
    env = {
        "SOPS_AGE_KEY": age_key.secret,
        "SOPS_AGE_KEY_FILE": str(other_key.path),
        "XDG_CONFIG_HOME": str(config_home),
    }
    keyring = AgeKeyring.from_environment(env)
    assert set(keyring.recipients) == {age_key.recipient, other_key.recipient, third.recipient}
    assert keyring.problems == ()


def test_default_keys_file_follows_xdg_then_home(tmp_path: Path) -> None:
    assert default_keys_file({"XDG_CONFIG_HOME": "/cfg", "HOME": "/home/u"}) == Path("/cfg/sops/age/keys.txt")
    assert default_keys_file({"HOME": "/home/u"}) == Path("/home/u/.config/sops/age/keys.txt")
    assert default_keys_file({"XDG_CONFIG_HOME": "relative", "HOME": "/home/u"}) is None  # as Go's UserConfigDir
    assert default_keys_file({}) is None


def test_home_config_is_used_when_nothing_else_is_set(tmp_path: Path, age_key: AgeKey) -> None:
    home = tmp_path / "home"
    (home / ".config" / "sops" / "age").mkdir(parents=True)
    (home / ".config" / "sops" / "age" / "keys.txt").write_text(age_key.path.read_text())
    assert AgeKeyring.from_environment({"HOME": str(home)}).recipients == (age_key.recipient,)


def test_missing_key_file_is_reported_not_fatal(tmp_path: Path, age_key: AgeKey) -> None:
    env = {"SOPS_AGE_KEY_FILE": str(tmp_path / "nope.txt"), "SOPS_AGE_KEY": age_key.secret}
    keyring = AgeKeyring.from_environment(env)
    assert keyring.recipients == (age_key.recipient,)
    assert keyring.problems == (f"SOPS_AGE_KEY_FILE: {tmp_path / 'nope.txt'} does not exist",)


def test_no_key_message_lists_where_it_looked_and_what_only_sops_supports(tmp_path: Path) -> None:
    keyring = AgeKeyring.from_environment({"HOME": str(tmp_path), "SOPS_AGE_KEY_CMD": "pass show age"})
    message = keyring.no_key_message()
    assert not keyring
    assert "SOPS_AGE_KEY_FILE" in message
    assert str(tmp_path / ".config" / "sops" / "age" / "keys.txt") in message
    assert "SOPS_AGE_KEY_CMD is set, which only the sops binary supports" in message


def test_unwrap_errors(age_key: AgeKey, other_key: AgeKey) -> None:
    keyring = AgeKeyring.from_text(age_key.path.read_text())
    damaged = AgeStanza(
        age_key.recipient, "-----BEGIN AGE ENCRYPTED FILE-----\nAAAA\n-----END AGE ENCRYPTED FILE-----\n"
    )
    with pytest.raises(SopsError, match="damaged"):
        keyring.unwrap([damaged], "f.yaml")
    with pytest.raises(SopsError, match=f"encrypted to {other_key.recipient}"):
        keyring.unwrap([AgeStanza(other_key.recipient, "x")], "f.yaml")
    with pytest.raises(SopsError, match="no age key available"):
        AgeKeyring().unwrap([AgeStanza(age_key.recipient, "x")], "f.yaml")
