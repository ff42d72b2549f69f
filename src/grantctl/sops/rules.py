"""``.sops.yaml`` creation rules: which age recipients and which selectors a new file gets.

As in sops, the first rule whose ``path_regex`` matches the file's path *relative to the
directory of the config file* wins (a rule without ``path_regex`` matches everything), and a rule
with none of the four selectors encrypts everything but keys ending in ``_unencrypted``.

Example::

    rules = CreationRules.load(repo_root / ".sops.yaml")
    rule = rules.rule_for(repo_root / "state" / "acme-ltd.yaml")
    rule.age          # ("age1...",)
    rule.selectors    # Selectors(encrypted_regex="^(access_token|refresh_token|id_token)$")
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pyrage import x25519

from grantctl.errors import Location, ManifestError, SopsError
from grantctl.sops._format import DEFAULT_UNENCRYPTED_SUFFIX, Selectors

_SELECTOR_FIELDS = (
    "encrypted_suffix",
    "unencrypted_suffix",
    "encrypted_regex",
    "unencrypted_regex",
    "encrypted_comment_regex",
    "unencrypted_comment_regex",
)
_OTHER_KEY_TYPES = ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri", "hckms")
DEFAULT_INDENT = 4


@dataclass(frozen=True)
class CreationRule:
    """One entry of ``creation_rules``. ``native_blocker`` says why only the binary can use it."""

    number: int
    path_regex: str
    age: tuple[str, ...]
    selectors: Selectors
    native_blocker: str | None = None


@dataclass(frozen=True)
class CreationRules:
    """The parsed ``.sops.yaml`` at ``path``."""

    path: Path
    rules: tuple[CreationRule, ...]
    indent: int = DEFAULT_INDENT

    @classmethod
    def load(cls, path: Path | str) -> CreationRules:
        """Parse the ``.sops.yaml`` at ``path``; ManifestError (file and field) when it is invalid."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(
                Location(path), "sops config not found: create .sops.yaml at the repository root"
            ) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            raise ManifestError(Location(path, line, column), "not valid YAML") from None
        return cls.parse(document, path)

    @classmethod
    def parse(cls, document: Any, path: Path | str = ".sops.yaml") -> CreationRules:
        """Rules from an already-parsed ``.sops.yaml`` mapping (``path`` anchors ``path_regex``)."""
        path = Path(path)
        if document is None:
            document = {}
        if not isinstance(document, Mapping):
            raise ManifestError(Location(path), "expected a mapping with `creation_rules`")
        raw_rules = document.get("creation_rules") or []
        if not isinstance(raw_rules, list):
            raise ManifestError(Location(path), "must be a list", field="creation_rules")
        rules = tuple(_parse_rule(raw, number, path) for number, raw in enumerate(raw_rules, start=1))
        return cls(path, rules, _indent(document, path))

    def rule_for(self, file_path: Path | str) -> CreationRule:
        """The first rule matching ``file_path``; SopsError naming the file when none does."""
        relative = _relative_to_config(file_path, self.path)
        for rule in self.rules:
            if not rule.path_regex or re.search(rule.path_regex, relative):
                return rule
        raise SopsError(
            file_path,
            f"no creation rule in {self.path} matches this file; add one whose path_regex matches {relative!r}",
        )


def _relative_to_config(file_path: Path | str, config_path: Path) -> str:
    # sops: filePath = strings.TrimPrefix(abs(filePath), abs(dir(config)) + "/")
    absolute = os.path.abspath(file_path)
    prefix = os.path.abspath(config_path.parent) + os.sep
    relative = absolute.removeprefix(prefix)
    return relative.replace(os.sep, "/")


def _parse_rule(raw: Any, number: int, path: Path) -> CreationRule:
    where = f"creation_rules[{number - 1}]"
    if not isinstance(raw, Mapping):
        raise ManifestError(Location(path), "each rule must be a mapping", field=where)
    path_regex = raw.get("path_regex") or ""
    if not isinstance(path_regex, str):
        raise ManifestError(Location(path), "must be a string", field=f"{where}.path_regex")
    try:
        re.compile(path_regex)
    except re.error:
        raise ManifestError(Location(path), "not a valid regex", field=f"{where}.path_regex") from None
    recipients, blocker = _recipients(raw, where, path)
    selectors, selector_blocker = _selectors(raw, where, path)
    return CreationRule(number, path_regex, recipients, selectors, blocker or selector_blocker)


def _recipients(raw: Mapping[str, Any], where: str, path: Path) -> tuple[tuple[str, ...], str | None]:
    blocker = None
    if any(raw.get(kind) for kind in _OTHER_KEY_TYPES):
        blocker = "the rule uses key types other than age"
    groups = raw.get("key_groups")
    if groups:
        if not isinstance(groups, list) or not all(isinstance(group, Mapping) for group in groups):
            raise ManifestError(Location(path), "must be a list of mappings", field=f"{where}.key_groups")
        if len(groups) > 1:
            blocker = "the rule uses several key groups (Shamir secret sharing)"
        if any(group.get(kind) for group in groups for kind in _OTHER_KEY_TYPES):
            blocker = "the rule uses key types other than age"
        values = [value for group in groups for value in _as_list(group.get("age"))]
    else:
        values = _as_list(raw.get("age"))
    recipients = tuple(part.strip() for value in values for part in str(value).split(",") if part.strip())
    for recipient in recipients:
        if recipient.startswith("age1") and recipient.count("1") > 1:
            blocker = blocker or "the rule uses an age plugin recipient"
            continue
        try:
            x25519.Recipient.from_str(recipient)
        except Exception:
            raise ManifestError(
                Location(path), f"{recipient!r} is not a valid age recipient", field=f"{where}.age"
            ) from None
    if not recipients and blocker is None:
        blocker = "the rule has no age recipient"
    return recipients, blocker


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _selectors(raw: Mapping[str, Any], where: str, path: Path) -> tuple[Selectors, str | None]:
    present = [name for name in _SELECTOR_FIELDS if raw.get(name)]
    if len(present) > 1:
        raise ManifestError(
            Location(path),
            f"cannot use more than one of {', '.join(_SELECTOR_FIELDS)} in the same rule",
            field=where,
        )
    blocker = None
    if any(name.endswith("comment_regex") for name in present):
        blocker = "the rule selects values by comment"
    values = {name: str(raw[name]) for name in present if not name.endswith("comment_regex")}
    if not present:
        values["unencrypted_suffix"] = DEFAULT_UNENCRYPTED_SUFFIX
    mac_only = raw.get("mac_only_encrypted", False)
    if not isinstance(mac_only, bool):
        raise ManifestError(Location(path), "must be true or false", field=f"{where}.mac_only_encrypted")
    selectors = Selectors(**values, mac_only_encrypted=mac_only)
    for name in ("encrypted_regex", "unencrypted_regex"):
        if values.get(name):
            try:
                re.compile(values[name])
            except re.error:
                raise ManifestError(Location(path), "not a valid regex", field=f"{where}.{name}") from None
    return selectors, blocker


def _indent(document: Mapping[str, Any], path: Path) -> int:
    stores = document.get("stores")
    yaml_store = stores.get("yaml") if isinstance(stores, Mapping) else None
    indent = yaml_store.get("indent") if isinstance(yaml_store, Mapping) else None
    if indent is None:
        return DEFAULT_INDENT
    if not isinstance(indent, int) or isinstance(indent, bool) or not 1 < indent < 10:
        raise ManifestError(Location(path), "must be an integer from 2 to 9", field="stores.yaml.indent")
    return indent
