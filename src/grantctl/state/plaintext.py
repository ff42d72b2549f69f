"""Reading the plaintext grant of state files: no key, no sops process, no crypto import.

This is the one reader behind :meth:`FilesStore.read_grant` / :meth:`FilesStore.read_grants` and
what ``plan`` and ``audit`` run over every state file of a repo, so it is built for speed:

- the ``sops:`` metadata block (half of a file's bytes) is cut out before parsing;
- libyaml parses, pydantic validates all grants in one call, the cyclic GC is paused meanwhile;
- only when that fails is each file checked on its own, so the error names the file and field.

It also refuses a state file whose tokens are not encrypted: committed plaintext tokens are a leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from grantctl.errors import StateError
from grantctl.state.model import TOKEN_FIELDS, Grant
from grantctl.yamlsource import FastLoader, cyclic_gc_paused, load_fast

STATE_SUFFIX = ".yaml"
SOPS_KEY = "sops"
TOKENS_KEY = "tokens"
RESTORE = "State files are written by grantctl only: restore this one from git history"

# A top-level `sops:` line and every indented, blank or comment line after it. Only top-level keys
# sit at column 0 in a block mapping, so the cut cannot reach into another value; the key is also
# dropped after parsing, and a parse error is reported against the whole, uncut file.
_SOPS_BLOCK = re.compile(rb"^sops:.*\n(?:(?:[ \t].*|#.*)?\n)*", re.MULTILINE)
_ENCRYPTED = re.compile(r"^ENC\[AES256_GCM,data:")
_GRANTS = TypeAdapter(list[Grant])

Shown = Callable[[Path], Path | str]
# A faster reader for the (cut) text that may decline with None; it must read what it accepts
# exactly as load_fast does (FilesStore passes grantctl.sops._yamlfast with resolve_plain_scalar).
Parse = Callable[[bytes], Any]


def read_grants(paths: Sequence[Path], *, shown: Shown = str) -> dict[str, Grant]:
    """The grant of every state file in ``paths``, by connection name (the file name without .yaml)."""
    with cyclic_gc_paused():
        documents = [grant_document(path, _read(path, shown), shown=shown) for path in paths]
        try:
            grants = _GRANTS.validate_python(documents)
        except ValidationError:
            grants = [_validate(path, document, shown) for path, document in zip(paths, documents, strict=True)]
    found = {}
    for path, grant in zip(paths, grants, strict=True):
        name = path.name.removesuffix(STATE_SUFFIX)
        _check_name(grant, name, path, shown)
        found[name] = grant
    return found


def read_grant(path: Path, data: bytes, *, shown: Shown = str, parse: Parse | None = None) -> Grant:
    """The grant in ``data`` (the bytes of ``path``), checked against the file name."""
    grant = _validate(path, grant_document(path, data, shown=shown, parse=parse), shown)
    _check_name(grant, path.name.removesuffix(STATE_SUFFIX), path, shown)
    return grant


def grant_document(path: Path, data: bytes, *, shown: Shown = str, parse: Parse | None = None) -> dict[str, Any]:
    """The plaintext mapping of a state file without ``sops`` and ``tokens`` (after checking the tokens)."""
    cut = _SOPS_BLOCK.sub(b"", data if data.endswith(b"\n") else data + b"\n")
    document = None if parse is None else parse(cut)
    if document is None:
        try:
            document = load_fast(cut)
        except yaml.YAMLError:
            document = _load_whole(path, data, shown)
    if not isinstance(document, dict):
        raise StateError(f"{shown(path)}: not a state document (expected a mapping of grant fields). {RESTORE}")
    check_tokens_encrypted(document, shown(path))
    document.pop(SOPS_KEY, None)
    document.pop(TOKENS_KEY, None)
    return document


def check_tokens_encrypted(document: Mapping[str, Any], shown: Path | str) -> None:
    """Plaintext tokens in a committed file are a leak: refuse loudly (without echoing them)."""
    tokens = document.get(TOKENS_KEY)
    if tokens is None:
        return
    if not isinstance(tokens, dict) or set(tokens) - set(TOKEN_FIELDS):
        raise StateError(f"{shown}: `tokens` must be a mapping of {', '.join(TOKEN_FIELDS)}. {RESTORE}")
    unencrypted = sorted(key for key, value in tokens.items() if not _is_encrypted_value(value))
    if unencrypted:
        raise StateError(
            f"{shown}: {', '.join(unencrypted)} not encrypted: treat the token as leaked (revoke it and "
            "reconnect), then re-encrypt the file with `sops encrypt -i`"
        )


def resolve_plain_scalar(text: str) -> Any:
    """A non-empty plain scalar typed as :func:`load_fast` types it, where that is certain; else ValueError.

    For a reader that must agree with ``load_fast`` (see :data:`Parse`): ``true``/``false``/``null``
    and their capitalised forms, ``~``, decimal integers, and text that none of the loader's
    implicit resolvers claims (so a string) are certain; anything a resolver claims is not.
    """
    if text in _CERTAIN_CONSTANTS:
        return _CERTAIN_CONSTANTS[text]
    if _DECIMAL.match(text):
        return int(text)
    resolvers = FastLoader.yaml_implicit_resolvers
    for _tag, pattern in (*resolvers.get(text[0], ()), *resolvers.get(None, ())):
        if pattern.match(text):
            raise ValueError("typed by a YAML 1.1 resolver: leave it to libyaml")
    return text


_CERTAIN_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("null", "Null", "NULL", "~"), None),
}
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")


def _is_encrypted_value(value: object) -> bool:
    # sops leaves the empty string as it is: there is nothing to hide in it.
    return isinstance(value, str) and (value == "" or _ENCRYPTED.match(value) is not None)


def _read(path: Path, shown: Shown) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StateError(f"{shown(path)}: cannot read the state file: {exc.strerror}") from None


def _load_whole(path: Path, data: bytes, shown: Shown) -> Any:
    """Parse the uncut file, so a syntax error points at the line the user sees in the file."""
    try:
        return load_fast(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise StateError(f"{shown(path)}{where}: invalid YAML. {RESTORE}") from None


def _validate(path: Path, document: dict[str, Any], shown: Shown) -> Grant:
    try:
        return Grant.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise StateError(f"{shown(path)}: {field}: {first['msg']}. {RESTORE}") from None


def _check_name(grant: Grant, name: str, path: Path, shown: Shown) -> None:
    if grant.connection != name:
        raise StateError(f"{shown(path)}: the document is for connection {grant.connection!r}, not {name!r}. {RESTORE}")
