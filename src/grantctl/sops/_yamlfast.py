"""A fast reader for YAML in the one layout sops (go-yaml v3) writes; None for anything else.

``refresh`` parses two sops files per connection (its state file and its app credentials). libyaml
composes the node graph quickly, but building values from it in Python makes a state file cost
~100 us. Files that sops or grantctl wrote use a small part of YAML only: block mappings with plain
keys, block sequences (``- `` at a deeper indentation, mappings inline after it), one-line plain,
single- or double-quoted scalars, ``[]`` / ``{}``, and ``|`` / ``|-`` literal blocks. This module
reads exactly that, line by line (~30 us for a state file), and gives up (None) at the first thing
outside it: then :func:`grantctl.sops._goyaml.load` parses the text in full, so what it accepts,
refuses or reports stays the only behaviour.

Giving up is cheap and errs on the safe side: anything but printable ASCII, a ``#``, a tab, a blank
line, an escape in double quotes, anchors, tags, flow collections with content, multi-line plain
scalars, block scalars with indicators, keys that are not identifiers, duplicate keys. Plain
scalars are typed with go-yaml v3's rules (:func:`~grantctl.sops._goyaml.resolve_plain`), as the
full reader does. tests/sops/test_sops_yamlfast.py checks both readers agree wherever this one answers.

``load(text, resolve=...)`` types plain scalars with another function instead: the plaintext state
reader passes one that gives what PyYAML's loader gives, where that is certain, and raises
``ValueError`` (this reader then gives up) where it is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from grantctl.sops._goyaml import YamlUnsupported, resolve_plain

Resolve = Callable[[str], Any]

# printable ASCII and line feeds: no tab, no CR, no control or non-ASCII character
_SIMPLE_TEXT = re.compile(r"[\n\x20-\x7e]*\Z")
# a key at the start of a line's content, and whether a value follows on the line (group 2)
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):( |\Z)")
# a plain scalar starts with a character that is no YAML indicator, or with "-" and more
_PLAIN_START = re.compile(r"[^-?:,\[\]{}#&*!|>'\"%@` ]|-[^ \-]")


class _GiveUp(Exception):
    """The text is not in the simple layout: the full reader takes it."""


def load(text: str, *, resolve: Resolve = resolve_plain) -> dict[str, Any] | None:
    """The document in ``text`` as :func:`grantctl.sops._goyaml.load` reads it, or None (not simple).

    ``resolve`` types plain scalars (and keys); it may raise ``ValueError`` to give up.
    """
    if not text.endswith("\n") or "#" in text or not _SIMPLE_TEXT.match(text):
        return None
    lines = text.split("\n")
    lines.pop()  # after the final line feed
    reader = _Reader(lines, resolve)
    try:
        document = reader.mapping(0)
    except (_GiveUp, YamlUnsupported, ValueError):
        return None
    if reader.position != len(lines) or not document:
        return None
    return document


class _Reader:
    """Reads ``lines`` from ``position`` on; every method stops at the first line that is not its own."""

    def __init__(self, lines: list[str], resolve: Resolve) -> None:
        self.lines = lines
        self.resolve = resolve
        # the indentation of each line; -1 after the last one, so every block ends there
        self.indents = [len(line) - len(line.lstrip(" ")) for line in lines] + [-1]
        self.position = 0

    def mapping(self, indent: int, first: str | None = None) -> dict[str, Any]:
        """Keys at ``indent``; ``first`` is the content of a line that started after a ``- ``."""
        result: dict[str, Any] = {}
        if first is not None:
            self._entry(result, first, indent)
        lines, indents = self.lines, self.indents
        while indents[self.position] >= indent:
            if indents[self.position] != indent:
                raise _GiveUp
            line = lines[self.position]
            self.position += 1
            self._entry(result, line[indent:] if indent else line, indent)
        return result

    def _entry(self, result: dict[str, Any], content: str, indent: int) -> None:
        match = _KEY.match(content)
        if match is None:
            raise _GiveUp
        key = match.group(1)
        if key in result or type(self.resolve(key)) is not str:
            raise _GiveUp  # duplicates and keys like `true` or `null`: the full reader reports them
        if match.group(2):
            result[key] = self.scalar(content[match.end() :], indent)
        else:
            result[key] = self._nested(indent)

    def _nested(self, indent: int) -> Any:
        """The block under a ``key:`` line: a sequence or mapping indented deeper."""
        deeper = self.indents[self.position]
        if deeper <= indent or not self.lines[self.position]:
            raise _GiveUp  # an empty value, a sequence at the key's own indentation, a blank line
        if self.lines[self.position].startswith("- ", deeper):
            return self.sequence(deeper)
        return self.mapping(deeper)

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        lines, indents = self.lines, self.indents
        while indents[self.position] >= indent:
            line = lines[self.position]
            if indents[self.position] != indent or not line.startswith("- ", indent):
                raise _GiveUp
            self.position += 1
            content = line[indent + 2 :]
            if _KEY.match(content):
                items.append(self.mapping(indent + 2, first=content))
            else:
                items.append(self.scalar(content, indent))
        return items

    def scalar(self, text: str, parent_indent: int) -> Any:
        """A scalar written after ``key: `` or ``- `` on a line of a collection at ``parent_indent``."""
        if text in ("|", "|-"):
            return self._literal(text, parent_indent)
        if self.indents[self.position] > parent_indent:
            raise _GiveUp  # a continuation line: a multi-line scalar
        return _one_line_scalar(text, self.resolve)

    def _literal(self, header: str, parent_indent: int) -> str:
        start = self.position
        content_indent = self.indents[start]
        if content_indent <= parent_indent:
            raise _GiveUp
        while self.indents[self.position] > parent_indent:
            if self.indents[self.position] < content_indent or not self.lines[self.position]:
                raise _GiveUp  # less indented than the first line, or blank lines
            self.position += 1
        text = "\n".join(line[content_indent:] for line in self.lines[start : self.position])
        return text + "\n" if header == "|" else text


def _one_line_scalar(text: str, resolve: Resolve) -> Any:
    if not text:
        raise _GiveUp  # "key: " with a trailing space
    if text in ("[]", "{}"):
        return [] if text == "[]" else {}
    first = text[0]
    if first == '"':
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != '"' or "\\" in inner or '"' in inner:
            raise _GiveUp
        return inner
    if first == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
            raise _GiveUp
        return inner.replace("''", "'")
    if not _PLAIN_START.match(text) or text[-1] in " :" or ": " in text or text.startswith(("---", "...")):
        raise _GiveUp
    return resolve(text)
