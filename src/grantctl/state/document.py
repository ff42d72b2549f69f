"""The state document every backend stores: one SOPS YAML text per connection.

The document is the plaintext grant (:meth:`Grant.to_document`), a ``tokens:`` mapping whose values
SOPS encrypts (the ``.sops.yaml`` creation rule for ``state/<name>.yaml`` must say
``encrypted_regex: ^(access_token|refresh_token|id_token)$``) and the ``sops:`` metadata, whose MAC
covers every value. The files backend keeps it in ``state/<name>.yaml``; the PostgreSQL backend
keeps the very same text in a table. Either way ``sops decrypt`` reads it.

    text = new_document(grant, tokens, sops_config=repo.sops_config, path=state_path, shown=shown)
    opened = native.open_document(native.loads(text, path=shown), keyring)    # MAC verified
    text = updated_document(opened, new_grant, None, shown=shown)             # tokens kept
    tokens = tokens_from_tree(opened.tree, shown)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from grantctl.errors import StateError
from grantctl.sops import CreationRules, Selectors, native
from grantctl.state.model import TOKEN_FIELDS, Grant, Tokens
from grantctl.state.plaintext import TOKENS_KEY

STATE_ENCRYPTED_REGEX = "^(access_token|refresh_token|id_token)$"
RESTORE_FROM_GIT = "State files are written by grantctl only: restore it from git (`git checkout -- <file>`)"


def new_document(grant: Grant, tokens: Tokens | None, *, sops_config: Path, path: Path, shown: Path | str) -> str:
    """A new document for ``grant`` and ``tokens``, encrypted per the creation rule matching ``path``.

    ``path`` is where the document lives (or would live, for a backend without files): the rules
    of ``sops_config`` are matched against it. ``shown`` names the document in messages.
    """
    tree = plaintext_tree(grant, tokens.to_document() if tokens is not None else None)
    rules = CreationRules.load(sops_config)
    rule = rules.rule_for(path.absolute())
    check_selectors(rule.selectors, tree, shown, f"creation rule {rule.number} in {rules.path.name}")
    return native.encrypt(tree, rule, indent=rules.indent, path=shown)


def updated_document(opened: native.OpenDocument, grant: Grant, tokens: Tokens | None, *, shown: Path | str) -> str:
    """``opened`` rewritten for ``grant``; ``tokens=None`` keeps the stored tokens.

    The data key, recipients and the ciphertext of every unchanged value are kept, so the text
    differs only where something changed (and is ``opened``'s own text when nothing did).
    """
    stored = opened.tree.get(TOKENS_KEY)
    tree = plaintext_tree(grant, tokens.to_document() if tokens is not None else stored)
    check_selectors(opened.document.metadata.selectors, tree, shown, "its sops metadata")
    return opened.reencrypt(tree)


def plaintext_tree(grant: Grant, tokens: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plaintext document: grant fields, then the tokens (omitted when there are none)."""
    tree = grant.to_document()
    if tokens:
        tree[TOKENS_KEY] = dict(tokens)
    return tree


def check_selectors(selectors: Selectors, tree: Mapping[str, Any], shown: Path | str, source: str) -> None:
    """Tokens must be encrypted and grant fields must not be, or the document breaks its promises.

    A token in plaintext would be committed to git (or sit readable in a table); an encrypted grant
    field would blind ``plan`` and ``audit``, which read grants without a key.
    """
    for key_path in _leaf_paths(tree):
        should = key_path[0] == TOKENS_KEY
        if selectors.should_encrypt(key_path) != should:
            state = "leave it in plaintext" if should else "encrypt it"
            raise StateError(
                f"{shown}: {source} would {state} at {'.'.join(key_path)}; state files need "
                f"`encrypted_regex: {STATE_ENCRYPTED_REGEX}` in their .sops.yaml creation rule. "
                "Nothing was written"
            )


def tokens_from_tree(tree: Mapping[str, Any], shown: Path | str, *, restore: str = RESTORE_FROM_GIT) -> Tokens | None:
    """The tokens of a decrypted document, or None when it has none; ``restore`` says how to recover."""
    stored = tree.get(TOKENS_KEY)
    if stored is None:
        return None
    if (
        not isinstance(stored, dict)
        or set(stored) - set(TOKEN_FIELDS)
        or not all(isinstance(value, str) for value in stored.values())
    ):
        raise StateError(f"{shown}: `tokens` must map {', '.join(TOKEN_FIELDS)} to strings. {restore}")
    return Tokens(**stored) if stored else None


def _leaf_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _leaf_paths(item, path)
    elif value is not None:
        yield path
