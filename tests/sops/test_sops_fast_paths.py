"""The fast paths of the native codec give exactly what the reference paths give, or step aside.

- the age X25519 unwrap with ``cryptography`` against pyrage;
- the line reader of sops' own YAML layout against the full go-yaml reader (and, with the plaintext
  state reader's resolver, against libyaml's ``load_fast``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrage import x25519
from sops_corpus import HAND_WRITTEN_PLAIN_SCALARS, TRICKY_KEYS, TRICKY_STRINGS, tricky_tree, typed
from sops_support import AgeKey, state_tree

from grantctl.errors import SopsError
from grantctl.sops import AgeKeyring, AgeStanza, CreationRules, _age, _goyaml, _yamlfast, native
from grantctl.state.plaintext import resolve_plain_scalar
from grantctl.yamlsource import load_fast

# -- age -------------------------------------------------------------------------------------------------


def _key() -> tuple[Any, _age.X25519Key]:
    identity = x25519.Identity.generate()
    key = _age.x25519_key(str(identity), str(identity.to_public()))
    assert key is not None
    return identity, key


def test_the_fast_unwrap_reads_what_pyrage_writes_and_nothing_else() -> None:
    identity, key = _key()
    other, other_key = _key()
    for size in (0, 1, 32, 100, 65_536):
        payload = os.urandom(size)
        # rage adds a "grease" stanza to every file, and here one stanza is for another recipient
        armored = bytes(pyrage.encrypt(payload, [other.to_public(), identity.to_public()], armored=True)).decode()
        assert _age.decrypt(armored, key) == payload == bytes(pyrage.decrypt(armored.encode(), [identity]))
        assert _age.decrypt(armored, other_key) == payload
    stranger = bytes(pyrage.encrypt(b"k" * 32, [other.to_public()], armored=True)).decode()
    assert _age.decrypt(stranger, key) is None  # not for this key: pyrage gets to say so


def test_anything_damaged_or_unusual_is_left_to_pyrage() -> None:
    identity, key = _key()
    armored = bytes(pyrage.encrypt(b"k" * 32, [identity.to_public()], armored=True)).decode()
    lines = armored.splitlines()
    for index in range(1, len(lines) - 1):
        line = lines[index]
        for position in (0, len(line) // 2, len(line) - 3):
            flipped = "B" if line[position] == "A" else "A"
            damaged = "\n".join([*lines[:index], line[:position] + flipped + line[position + 1 :], *lines[index + 1 :]])
            # a changed byte never decrypts: the header MAC and the AEAD tags cover everything
            # (a flip in base64's unused padding bits changes no byte, and then it must still decrypt)
            changed = _age._dearmor(damaged) != _age._dearmor(armored)
            assert _age.decrypt(damaged, key) == (None if changed else b"k" * 32), (index, position)
    assert _age.decrypt(armored.replace("BEGIN AGE", "BEGIN RAGE"), key) is None
    assert _age.decrypt("not armored at all", key) is None
    binary = bytes(pyrage.encrypt(b"k" * 32, [identity.to_public()]))
    assert _age.decrypt(binary.decode("latin-1"), key) is None  # unarmored files: pyrage's business


def test_a_key_that_does_not_match_its_recipient_is_not_used() -> None:
    identity, _ = _key()
    other, _ = _key()
    assert _age.x25519_key(str(identity), str(other.to_public())) is None
    assert _age.x25519_key("AGE-SECRET-KEY-1NOTBECH32!", str(identity.to_public())) is None
    assert "AGE-SECRET" not in repr(_age.x25519_key(str(identity), str(identity.to_public())))


def _state_rule(repo: Path) -> Any:
    return CreationRules.load(repo / ".sops.yaml").rule_for(repo / "state" / "a.yaml")


def test_keyring_unwraps_sops_files_with_the_fast_path_and_reports_damage_as_before(
    age_key: AgeKey, repo: Path
) -> None:
    keyring = AgeKeyring.from_text(age_key.path.read_text())
    rule = _state_rule(repo)
    document = native.loads(native.encrypt(state_tree(), rule))
    assert native.open_document(document, keyring).tree == state_tree()
    assert keyring._fast_keys[age_key.recipient] is not None  # the fast path was taken
    (stanza,) = document.metadata.age
    tampered = stanza.enc.replace(stanza.enc.splitlines()[2], stanza.enc.splitlines()[2][::-1])
    with pytest.raises(SopsError, match="damaged"):
        keyring.unwrap([AgeStanza(stanza.recipient, tampered)], "f.yaml")


# -- the YAML line reader ----------------------------------------------------------------------------------


def _same(fast: Any, full: Any) -> bool:
    return typed(fast) == typed(full)


def test_state_and_credentials_files_take_the_fast_path(repo: Path) -> None:
    rule = _state_rule(repo)
    for tree in (state_tree(), {"client_id": "ABC123", "client_secret": "s3cr3t"}):
        text = native.encrypt(tree, rule)
        fast = _yamlfast.load(text)
        assert fast is not None
        assert _same(fast, _goyaml.load(text))


def test_every_value_sops_can_write_reads_the_same_or_is_declined() -> None:
    tree = tricky_tree()
    for indent in (2, 4):
        text = _goyaml.dump(tree, indent=indent)
        fast = _yamlfast.load(text)
        assert fast is None or _same(fast, _goyaml.load(text))
        for key, value in tree.items():  # part by part, so the simple parts do take the fast path
            part = _goyaml.dump({key: value}, indent=indent)
            fast = _yamlfast.load(part)
            assert fast is None or _same(fast, _goyaml.load(part)), key
    for text in [*TRICKY_STRINGS, *HAND_WRITTEN_PLAIN_SCALARS, *TRICKY_KEYS]:
        for document in (f"k: {text}\n", f"k:\n    - {text}\n", f"{text}: v\n", f'k: "{text}"\n', f"k: '{text}'\n"):
            _check_both_readers(document)


def _check_both_readers(document: str) -> None:
    """Where the fast reader answers, it answers as the reference reader does."""
    fast = _yamlfast.load(document)
    if fast is not None:
        assert _same(fast, _goyaml.load(document)), document
    fast = _yamlfast.load(document, resolve=resolve_plain_scalar)
    if fast is not None:
        assert _same(fast, load_fast(document)), document


@pytest.mark.parametrize(
    "document",
    [
        "a: 1 # note\n",  # comments
        "a:\tb\n",  # tabs
        "a: café\n",  # anything not ASCII
        "a: 1\na: 2\n",  # duplicate keys
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: [1, 2]\n",  # flow collections with content
        "a: plain\n  continued\n",  # multi-line plain scalars
        "a: |2\n   x\n",  # block scalars with an indentation indicator
        "a: >\n  folded\n",  # folded scalars
        "a:\n",  # an empty value
        "a:\n- x\n",  # a sequence at the key's own indentation
        'a: "esc\\"aped"\n',  # escapes
        "a: !!str 1\n",  # tags
        "a: |\n  x\n\n  y\n",  # blank lines in a block scalar
        "a: b",  # no final line break
        "---\na: b\n",  # document markers
        "true: x\n",  # keys that are not strings
        "- a\n",  # not a mapping
    ],
)
def test_the_fast_reader_declines_what_it_does_not_handle(document: str) -> None:
    assert _yamlfast.load(document) is None
    _check_both_readers(document)


def test_native_loads_still_reports_what_only_the_full_reader_sees() -> None:
    with pytest.raises(SopsError, match="duplicate mapping key"):
        native.loads("a: 1\na: 2\nsops:\n    mac: x\n")


_scalar = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.sampled_from(["2024-01-02", "012", "0x1F", "1e3", "yes", "~", "=", "<<", "ENC[AES256_GCM,data:x=,type:str]"]),
)
_key_text = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_tree = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key_text, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_key_text, _tree, min_size=1, max_size=4), st.sampled_from([2, 4]))
def test_random_documents_read_the_same_through_both_readers(tree: dict[str, Any], indent: int) -> None:
    try:
        text = _goyaml.dump(tree, indent=indent)
    except _goyaml.YamlUnsupported:
        return
    _check_both_readers(text)
