"""Reading YAML the way grantctl needs it: fast when the file is fine, precise when it is not.

Two loaders share one rule: timestamps stay strings (``createdOn: 2026-11-20`` is the string
``"2026-11-20"``), so the raw document can be checked against a JSON Schema before pydantic turns
strings into dates.

- :func:`load_fast` uses libyaml (``CSafeLoader``) and is what ``plan`` runs on thousands of files.
- :func:`load_located` also records where every value sits, so an error can point at ``file:line:column``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from grantctl.errors import Location, ManifestError

try:  # libyaml is almost always there; fall back to the pure-Python parser when it is not
    from yaml import CSafeLoader as _FastBase
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _FastBase  # type: ignore[assignment]

PathKey = tuple[str | int, ...]
"""A path into a document: mapping keys and list indexes, e.g. ``("spec", "scopes", 2)``."""


# Timestamps stay strings (see the module docstring); a bare ``=`` is YAML 1.1's obscure "value" tag,
# which PyYAML cannot construct, while sops and go-yaml write it unquoted as a plain string.
_DROPPED_TAGS = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"})


def _without_timestamps(base: type[Any]) -> type[Any]:
    """A loader class like ``base`` that leaves timestamps (and a bare ``=``) as strings."""
    resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in _DROPPED_TAGS]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    return type(f"{base.__name__}NoTimestamps", (base,), {"yaml_implicit_resolvers": resolvers})


FastLoader = _without_timestamps(_FastBase)
LocatedLoader = _without_timestamps(yaml.SafeLoader)
# go-yaml (sops) writes the string "<<" as `!!merge <<`; read it back as that string. Real `<<:`
# merge keys are resolved by the parser before any constructor runs, so they keep working.
FastLoader.add_constructor("tag:yaml.org,2002:merge", lambda loader, node: loader.construct_scalar(node))


def load_fast(text: str | bytes) -> Any:
    """Parse one YAML document with libyaml; raises ``yaml.YAMLError`` on bad syntax."""
    return yaml.load(text, Loader=FastLoader)  # noqa: S506 - FastLoader is a SafeLoader


class LocatedDocument:
    """A parsed YAML document and the ``line:column`` (1-based) of every value and mapping key in it."""

    def __init__(self, path: Path, data: Any, values: dict[PathKey, tuple[int, int]]) -> None:
        self.path = path
        self.data = data
        self._values = values

    def location(self, key: PathKey) -> Location:
        """Where ``key`` is, or its closest existing parent when the key itself is absent."""
        for end in range(len(key), -1, -1):
            found = self._values.get(key[:end])
            if found is not None:
                return Location(self.path, found[0], found[1])
        return Location(self.path, 1, 1)

    def key_location(self, key: PathKey) -> Location:
        """Where the mapping key (not its value) of ``key`` is; falls back to :meth:`location`."""
        found = self._values.get((*key, _KEY_MARKER))
        return Location(self.path, found[0], found[1]) if found else self.location(key)


_KEY_MARKER = "\0key"


def load_located(path: Path, text: str | None = None) -> LocatedDocument:
    """Parse ``path`` and remember positions; YAML syntax errors become a ``ManifestError`` at their position."""
    if text is None:
        text = read_text(path)
    loader = LocatedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or "invalid YAML"
        raise ManifestError(Location(path, line, column), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise ManifestError(Location(path), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    values: dict[PathKey, tuple[int, int]] = {}
    if node is not None:
        for key, line, column in _walk(node, ()):
            values[key] = (line, column)
    return LocatedDocument(path, data, values)


def _walk(node: yaml.Node, key: PathKey) -> Iterator[tuple[PathKey, int, int]]:
    yield key, node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*key, str(key_node.value))
            yield (*child, _KEY_MARKER), key_node.start_mark.line + 1, key_node.start_mark.column + 1
            yield from _walk(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*key, index))


def read_text(path: Path) -> str:
    """Read a UTF-8 file, turning OS errors into a message that names the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(Location(path), "file not found") from None
    except UnicodeDecodeError:
        raise ManifestError(Location(path), "not UTF-8 text") from None
    except OSError as exc:
        raise ManifestError(Location(path), f"cannot read file: {exc.strerror}") from None


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of parsed documents and models pile up.

    They hold no reference cycles, so the collector finds nothing, yet with 10,000 connections its
    repeated full passes over the growing heap made loading superlinear (6.5 s instead of 4.2 s).
    Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
