"""Native format vs the real sops 3.11 binary, in both directions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sops_corpus import HAND_WRITTEN_PLAIN_SCALARS, TRICKY_STRINGS, tricky_tree, typed
from sops_support import ACCESS, ID_TOKEN, AgeKey, state_tree

from grantctl.sops import (
    AgeKeyring,
    CreationRules,
    SopsUnsupported,
    _goyaml,
    decrypt,
    encrypt,
    load,
    loads,
    open_document,
    read_secrets,
)

RunSops = Callable[..., Any]


def sops_encrypt(run_sops: RunSops, repo: Path, target: str, plaintext: str, env: dict[str, str]) -> str:
    result = run_sops(
        "--config", str(repo / ".sops.yaml"), "encrypt", "--filename-override", str(repo / target),
        stdin=plaintext, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def sops_decrypt(run_sops: RunSops, path: Path, env: dict[str, str]) -> str:
    result = run_sops("decrypt", str(path), env=env)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def key_env(key: AgeKey) -> dict[str, str]:
    return {"SOPS_AGE_KEY_FILE": str(key.path)}


TARGETS = ["connections/tricky.secrets.yaml", "state/tricky.yaml"]


@pytest.mark.parametrize("target", TARGETS)
def test_sops_output_is_read_natively_and_our_yaml_is_what_sops_writes(
    repo: Path, age_key: AgeKey, run_sops: RunSops, target: str
) -> None:
    plaintext = _goyaml.dump(tricky_tree())
    encrypted = repo / target
    encrypted.write_text(sops_encrypt(run_sops, repo, target, plaintext, key_env(age_key)))

    # sops parsed our YAML and wrote it back unchanged: the emitter is go-yaml's, byte for byte
    assert sops_decrypt(run_sops, encrypted, key_env(age_key)) == plaintext
    # and the native reader gets the same typed values, with sops' MAC verifying
    document = load(encrypted)
    tree = decrypt(document, AgeKeyring.from_text(age_key.path.read_text()))
    assert typed(tree) == typed(_goyaml.load(plaintext))
    assert tree["strings"] == tricky_tree()["strings"]
    assert tree["string_list"] == tricky_tree()["string_list"]
    assert not document.has_comments  # "#" inside strings, raw U+2028 or not


@pytest.mark.parametrize("target", TARGETS)
def test_sops_decrypts_what_native_encrypts(repo: Path, age_key: AgeKey, run_sops: RunSops, target: str) -> None:
    tree = tricky_tree()
    path = repo / target
    path.write_text(encrypt(tree, CreationRules.load(repo / ".sops.yaml").rule_for(path)))

    assert sops_decrypt(run_sops, path, key_env(age_key)) == _goyaml.dump(tree)
    native = decrypt(load(path), AgeKeyring.from_text(age_key.path.read_text()))
    assert native["strings"] == tree["strings"]
    assert native["string_list"] == tree["string_list"]


def test_native_layout_and_metadata_match_sops(repo: Path, age_key: AgeKey, run_sops: RunSops) -> None:
    tree = state_tree()
    plaintext = _goyaml.dump(tree)
    target = "state/acme-ltd.yaml"
    by_sops = sops_encrypt(run_sops, repo, target, plaintext, key_env(age_key))
    native = encrypt(tree, CreationRules.load(repo / ".sops.yaml").rule_for(repo / target))

    assert _masked(native) == _masked(by_sops)
    assert "encrypted_regex: ^(access_token|refresh_token|id_token)$\n    version: 3.11.0\n" in native


def _masked(text: str) -> str:
    text = re.sub(r"ENC\[AES256_GCM,[^\]]*\]", "ENC[...]", text)
    text = re.sub(r"enc: \|\n(?: +.*\n)+? +-----END AGE ENCRYPTED FILE-----\n", "enc: AGE\n", text)
    return re.sub(r'lastmodified: "[^"]*"', 'lastmodified: "..."', text)


@pytest.mark.parametrize("target", TARGETS)
def test_hand_written_plain_scalars_get_sops_types_and_mac(
    repo: Path, age_key: AgeKey, run_sops: RunSops, target: str
) -> None:
    # not produced by our emitter: the file a person writes, encrypted by sops
    scalars = HAND_WRITTEN_PLAIN_SCALARS
    hand_written = "".join(f"k{index:03d}: {text}\n" for index, text in enumerate(scalars))
    path = repo / target
    path.write_text(sops_encrypt(run_sops, repo, target, hand_written, key_env(age_key)))

    native = decrypt(load(path), AgeKeyring.from_text(age_key.path.read_text()))  # MAC verified

    if target.startswith("connections/"):  # encrypted values keep the type sops parsed
        assert typed(native) == typed(_goyaml.load(hand_written))
    assert sops_decrypt(run_sops, path, key_env(age_key)) == _goyaml.dump(native)
    assert native["k000"] == 0  # "-0" is the integer 0 for go-yaml
    assert native[f"k{scalars.index('2024-01-02  03:04:05'):03d}"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_native_update_changes_only_what_changed_and_sops_reads_it(
    repo: Path, age_key: AgeKey, run_sops: RunSops
) -> None:
    path = repo / "state" / "acme-ltd.yaml"
    path.write_text(sops_encrypt(run_sops, repo, "state/acme-ltd.yaml", _goyaml.dump(state_tree()), key_env(age_key)))
    before = load(path)
    opened = open_document(before, AgeKeyring.from_text(age_key.path.read_text()))
    tree = opened.tree
    tree["tokens"]["refresh_token"] = "ROTATED-REFRESH-TOKEN"
    tree["refreshed_at"] = "2026-11-22T10:00:00Z"

    after = opened.reencrypt(tree, now=datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC))
    path.write_text(after)

    changed = _changed_lines(before.text, after)
    assert [line.split(":")[0].strip() for line in changed] == [
        "refreshed_at",
        "refresh_token",
        "lastmodified",
        "mac",
    ]
    for key in ("access_token", "id_token"):  # unchanged ciphertext kept byte for byte
        assert before.tree["tokens"][key] == loads(after).tree["tokens"][key]
    assert 'lastmodified: "2026-11-22T10:00:05Z"' in after
    decrypted = _goyaml.load(sops_decrypt(run_sops, path, key_env(age_key)))
    rotated = {"access_token": ACCESS, "refresh_token": "ROTATED-REFRESH-TOKEN", "id_token": ID_TOKEN}
    assert decrypted["tokens"] == rotated
    assert decrypted["refreshed_at"] == "2026-11-22T10:00:00Z"


def _changed_lines(old: str, new: str) -> list[str]:
    return [
        line[1:]
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line.startswith("+") and not line.startswith("+++")
    ]


def test_unchanged_tree_gives_back_the_file_untouched(repo: Path, age_key: AgeKey) -> None:
    path = repo / "state" / "acme-ltd.yaml"
    text = encrypt(state_tree(), CreationRules.load(repo / ".sops.yaml").rule_for(path))
    opened = open_document(loads(text, path=path), AgeKeyring.from_text(age_key.path.read_text()))

    assert opened.reencrypt(state_tree()) == text
    assert opened.reencrypt({**state_tree(), "consecutive_failures": 0.0}) != text  # 0.0 is not 0 for sops


@pytest.mark.parametrize(
    "rule",
    [
        "    mac_only_encrypted: true\n    encrypted_regex: ^(access_token|refresh_token|id_token)$\n",
        "    encrypted_suffix: _token\n",
        "    unencrypted_regex: ^(provider|tenant|name|id|type)$\n",
    ],
)
def test_other_selectors_and_several_recipients_interoperate(
    tmp_path: Path, age_key: AgeKey, other_key: AgeKey, run_sops: RunSops, rule: str
) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: \\.yaml$\n{rule}    age: {age_key.recipient},{other_key.recipient}\n"
    )
    tree = state_tree()
    native_path, sops_path = tmp_path / "native.yaml", tmp_path / "by-sops.yaml"
    native_path.write_text(encrypt(tree, CreationRules.load(tmp_path / ".sops.yaml").rule_for(native_path)))
    sops_path.write_text(sops_encrypt(run_sops, tmp_path, "by-sops.yaml", _goyaml.dump(tree), key_env(age_key)))

    # the second recipient alone can read both
    assert sops_decrypt(run_sops, native_path, key_env(other_key)) == _goyaml.dump(tree)
    native_tree = decrypt(load(sops_path), AgeKeyring.from_text(other_key.path.read_text()))
    assert typed(native_tree) == typed(_goyaml.load(_goyaml.dump(tree)))
    assert load(native_path).recipients == (age_key.recipient, other_key.recipient)


def test_shamir_key_groups_fall_back_to_the_binary(
    tmp_path: Path, age_key: AgeKey, other_key: AgeKey, run_sops: RunSops
) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - key_groups:\n      - age: [{age_key.recipient}]\n      - age: [{other_key.recipient}]\n"
    )
    path = tmp_path / "secret.yaml"
    path.write_text(sops_encrypt(run_sops, tmp_path, "secret.yaml", "client_secret: s3cr3t\n", key_env(age_key)))
    both = tmp_path / "both.txt"
    both.write_text(age_key.path.read_text() + other_key.path.read_text())

    with pytest.raises(SopsUnsupported, match="key groups"):
        load(path)
    assert read_secrets(path, env={"SOPS_AGE_KEY_FILE": str(both), "PATH": ""}) == {"client_secret": "s3cr3t"}


def test_comments_are_read_but_not_rewritten(repo: Path, age_key: AgeKey, run_sops: RunSops) -> None:
    target = "connections/commented.secrets.yaml"
    path = repo / target
    source = "# who issued this app\nclient_id: app-1 # the id\nclient_secret: s3cr3t\n"
    path.write_text(sops_encrypt(run_sops, repo, target, source, key_env(age_key)))
    assert "#ENC[" in path.read_text()  # sops encrypts comments
    keyring = AgeKeyring.from_text(age_key.path.read_text())
    document = load(path)
    opened = open_document(document, keyring)

    assert document.has_comments
    assert opened.tree == {"client_id": "app-1", "client_secret": "s3cr3t"}
    assert opened.reencrypt(opened.tree) == document.text
    with pytest.raises(SopsUnsupported, match="comments"):
        opened.reencrypt({"client_id": "app-2", "client_secret": "s3cr3t"})


def test_configured_indent_is_kept(tmp_path: Path, age_key: AgeKey, run_sops: RunSops) -> None:
    (tmp_path / ".sops.yaml").write_text(
        f"stores:\n  yaml:\n    indent: 2\ncreation_rules:\n  - age: {age_key.recipient}\n"
        f"    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
    )
    rules = CreationRules.load(tmp_path / ".sops.yaml")
    tree = state_tree()
    by_sops = sops_encrypt(run_sops, tmp_path, "s.yaml", _goyaml.dump(tree), key_env(age_key))
    native = encrypt(tree, rules.rule_for(tmp_path / "s.yaml"), indent=rules.indent)
    assert _masked(native) == _masked(by_sops)

    opened = open_document(loads(by_sops), AgeKeyring.from_text(age_key.path.read_text()))
    assert opened.document.indent == 2
    tree["consecutive_failures"] = 1
    rewritten = opened.reencrypt(tree, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert len(_changed_lines(by_sops, rewritten)) == 3  # the field, lastmodified, mac


def test_indent_2_block_scalars_in_lists_and_a_separator_before_the_metadata(
    tmp_path: Path, age_key: AgeKey, run_sops: RunSops
) -> None:
    config = tmp_path / ".sops.yaml"
    config.write_text(
        f"stores:\n  yaml:\n    indent: 2\ncreation_rules:\n  - age: {age_key.recipient}\n"
        f"    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
    )
    rules = CreationRules.load(config)
    multi_line = [text for text in TRICKY_STRINGS if "\n" in text]
    tree = {
        # with an indent of 2, go-yaml's indentation indicator fits list items: " lead\nx" works
        "items": multi_line,
        "nested": [{"name": " lead\nx", "more": ["\nfoo"]}],
        "tokens": {"access_token": ACCESS, "refresh_token": "ends\nwith a sep\u2028"},
        # ends with U+2028: go-yaml writes `sops:` right after it, with no newline
        "last": "ends\nwith a sep\u2028",
    }
    plaintext = _goyaml.dump(tree, indent=2)
    assert "with a sep\u2028sops:\n" in encrypt(tree, rules.rule_for(tmp_path / "s.yaml"), indent=2)
    by_sops = tmp_path / "by-sops.yaml"
    by_sops.write_text(sops_encrypt(run_sops, tmp_path, "s.yaml", plaintext, key_env(age_key)))
    native = tmp_path / "native.yaml"
    native.write_text(encrypt(tree, rules.rule_for(native), indent=rules.indent))
    keyring = AgeKeyring.from_text(age_key.path.read_text())

    for path in (by_sops, native):
        decrypted = run_sops("--config", str(config), "decrypt", str(path), env=key_env(age_key))
        assert decrypted.returncode == 0, decrypted.stderr
        assert decrypted.stdout == plaintext
        assert decrypt(load(path), keyring) == tree
    assert _masked(native.read_text()) == _masked(by_sops.read_text())

    opened = open_document(load(native), keyring)
    assert opened.document.indent == 2  # found after the U+2028 too
    new_tree = {**tree, "tokens": {**tree["tokens"], "access_token": "NEW"}}
    rewritten = opened.reencrypt(new_tree, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert [line.split(":")[0].strip() for line in _changed_lines(native.read_text(), rewritten)] == [
        "access_token",
        "lastmodified",
        "mac",
    ]
