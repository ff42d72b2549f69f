"""YAML exactly as sops 3.11 reads and writes it.

sops parses and emits YAML with go-yaml v3, and its MAC covers the *typed* values it parsed: the
plain scalar ``on`` is the string "on" (not YAML 1.1's True), ``012`` is the integer 10,
``2024-01-02`` is a timestamp whose MAC bytes are ``2024-01-02T00:00:00Z``. PyYAML follows YAML 1.1,
so on top of its C parser this module resolves plain scalars with go-yaml v3's rules, and emits
with go-yaml v3's layout (sops' indent of 4, sequences indented inside mappings, no line folding,
the same choice between plain, quoted and literal styles), so that a file we write is the file
``sops`` would have written for the same tree.

Values are ``str``, ``int``, ``float``, ``bool``, ``None``, ``datetime`` (timezone-aware),
``list`` and ``dict`` with ``str`` keys. What go-yaml v3 / sops would treat differently from
these (uint64 integers, explicit tags other than ``!!str`` and the ``!!merge <<`` that sops writes
for the string "<<", merge keys, several documents, nanosecond timestamps) raises
:class:`YamlUnsupported` rather than being guessed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

try:  # the C parser is what makes reading 1,000 state files cheap
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

# Keys longer than this (in UTF-8 bytes) are written by go-yaml as "? key" complex keys.
_MAX_SIMPLE_KEY_BYTES = 128


class YamlUnsupported(Exception):
    """Valid YAML that the native implementation will not read or write (the reason says why)."""


class YamlInvalid(Exception):
    """Not valid YAML (or not what sops accepts); ``line``/``column`` are 1-based when known."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = f" at line {line}" if line is not None else ""
        if line is not None and column is not None:
            where += f", column {column}"
        super().__init__(f"{reason}{where}")


# -- go-yaml v3 scalar resolution --------------------------------------------------------------------

_PLAIN_TAG = "tag:grantctl.invalid,2025:plain"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MERGE = "<<"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"

_RESOLVE_MAP: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# go-yaml's resolve table: which first characters may start a non-string plain scalar.
_HINT_SIGN = "+-"
_HINT_DIGIT = "0123456789"
_HINT_MAP = "yYnNtTfFoO~<"  # "<" for the merge key "<<"
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?\Z")
# strconv.ParseInt(s, 0, 64): sign, then 0x / 0o / 0b / leading-0 octal / decimal.
_GO_INT = re.compile(
    r"(?P<sign>[+-]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|(?P<oct0>0[0-7]*)|(?P<dec>[1-9][0-9]*))\Z"
)


def resolve_plain(text: str) -> Any:
    """The value go-yaml v3 decodes an untagged plain scalar into (as sops sees it)."""
    hint = _hint(text)
    if hint is None:
        return text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if text == _MERGE:
        # a merge key only as a mapping key (refused there); as a value go-yaml decodes the string
        return text
    if hint == ".":
        return float(text) if _DOT_FLOAT.match(text) else text
    if hint in ("D", "S"):
        return _resolve_number_or_time(text)
    return text


def _hint(text: str) -> str | None:
    if not text:
        return "N"
    first = text[0]
    if first in _HINT_SIGN:
        return "S"
    if first in _HINT_DIGIT:
        return "D"
    if first in _HINT_MAP:
        return "M"
    if first == ".":
        return "."
    return None


def _resolve_number_or_time(text: str) -> Any:
    stamp = parse_timestamp(text)
    if stamp is not None:
        return stamp
    plain = text.replace("_", "")
    integer = _go_parse_int(plain)
    if integer is not None:
        if _INT64_MIN <= integer <= _INT64_MAX:
            return integer
        if integer <= _UINT64_MAX and not plain.startswith(("-", "+")):
            # go-yaml makes this a uint64, which sops cannot walk: it fails on such a file.
            raise YamlUnsupported("integers above 9223372036854775807 are not supported by sops")
    if _YAML_STYLE_FLOAT.match(plain):
        value = float(plain)
        # strconv.ParseFloat reports overflow as an error, so go-yaml keeps the text as a string.
        return text if math.isinf(value) else value
    return text


def _go_parse_int(text: str) -> int | None:
    match = _GO_INT.match(text)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    for group, base in (("hex", 16), ("oct", 8), ("bin", 2), ("oct0", 8), ("dec", 10)):
        digits = match[group]
        if digits is not None:
            return sign * int(digits, base)
    return None  # pragma: no cover - the pattern always fills one group


# -- timestamps (go-yaml v3 layouts, Go's time.Parse rules, RFC 3339 with nanoseconds out) ----------

_TS_DATE_TIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<t>[Tt])|(?P<sp> +))(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})"
    r"(?:[.,](?P<frac>[0-9]+))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_TS_DATE = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})\Z")


def parse_timestamp(text: str) -> datetime | None:
    """The time go-yaml v3 reads from a plain scalar, or None when it stays a string.

    Layouts (Go): ``2006-1-2T15:4:5.999999999Z07:00`` (``T`` or ``t``), ``2006-1-2 15:4:5.999999999``
    (UTC) and ``2006-1-2`` (UTC midnight). A ``T`` form without a zone is a string.
    """
    if len(text) < 5 or not text[:4].isdigit() or text[4] != "-":
        return None
    date_only = _TS_DATE.match(text)
    if date_only is not None:
        return _make_time(date_only["y"], date_only["m"], date_only["d"], "0", "0", "0", None, "Z")
    match = _TS_DATE_TIME.match(text)
    if match is None:
        return None
    zone = match["zone"]
    if match["t"] is not None and zone is None:
        return None
    if match["sp"] is not None and zone is not None:
        return None
    return _make_time(
        match["y"], match["m"], match["d"], match["H"], match["M"], match["S"], match["frac"], zone or "Z"
    )


def _make_time(
    year: str, month: str, day: str, hour: str, minute: str, second: str, frac: str | None, zone: str
) -> datetime | None:
    tz = _zone(zone)
    if tz is None:
        return None
    micro = _microseconds(frac)
    if int(year) == 0:
        raise YamlUnsupported("timestamps in year 0000 are not supported")
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    except ValueError:  # out of range (month 13, Feb 30, hour 24): Go keeps it a string too
        return None


def _zone(zone: str) -> timezone | None:
    if zone == "Z":
        return UTC
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 23 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if zone[0] == "-" else offset) if offset else UTC


def _microseconds(frac: str | None) -> int:
    if not frac:
        return 0
    nanos = frac[:9].ljust(9, "0")  # Go keeps nine digits and drops the rest
    if nanos[6:] != "000":
        raise YamlUnsupported("timestamps with sub-microsecond precision are not supported")
    return int(nanos[:6])


def format_timestamp(value: datetime) -> str:
    """``value`` as Go's ``time.RFC3339Nano`` (what sops hashes and go-yaml writes); naive = UTC."""
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


# -- Go float formatting ------------------------------------------------------------------------------


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(value)`` and the decimal point position (0.DIGITS x 10^dp)."""
    decimal = Decimal(repr(abs(value))).normalize()
    sign_, digits, exponent = decimal.as_tuple()
    del sign_
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    return text, len(text) + exponent


def format_float_f(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: what sops hashes and encrypts for a float."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def format_float_g(value: float) -> str:
    """go-yaml v3's float output: ``strconv.FormatFloat(v, 'g', -1, 64)`` plus .inf/.nan."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # shortest 'g' switches to %e outside [1e-4, 1e6)
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


# -- reading ------------------------------------------------------------------------------------------


class _GoComposer(_Parser, BaseResolver):
    """Composes the node graph; plain scalars are tagged for go-yaml resolution, the rest are strings."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        BaseResolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            return _PLAIN_TAG if implicit[0] else _STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


def load(text: str) -> Any:
    """The single YAML document in ``text`` as go-yaml v3 (and so sops) would decode it."""
    composer = _GoComposer(text)
    try:
        node = composer.get_single_node()
    except yaml.composer.ComposerError as error:
        if "single document" in f"{error.context} {error.problem}":
            raise YamlUnsupported("files with several YAML documents are not supported") from None
        raise _invalid(error) from None
    except yaml.MarkedYAMLError as error:
        raise _invalid(error) from None
    except yaml.YAMLError as error:
        raise YamlInvalid("not valid YAML") from error
    finally:
        composer.dispose()
    return None if node is None else _Builder().value(node)


class _Builder:
    """Node graph to Python values; an alias yields the same object as its anchor (as in go-yaml)."""

    def __init__(self) -> None:
        self.built: dict[int, Any] = {}
        self.building: set[int] = set()

    def value(self, node: Node) -> Any:
        known = self.built.get(id(node), _MISSING)
        if known is not _MISSING:
            return known
        if id(node) in self.building:
            raise YamlInvalid("recursive YAML alias", node.start_mark.line + 1)
        self.building.add(id(node))
        try:
            result = self._build(node)
        finally:
            self.building.discard(id(node))
        self.built[id(node)] = result
        return result

    def _build(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
            return [self.value(child) for child in node.value]
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node)
        raise YamlUnsupported(f"explicit YAML tag {node.tag!r} (line {node.start_mark.line + 1})")

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == _STR_TAG or (node.tag == _MERGE_TAG and node.value == _MERGE):
            # sops writes the string "<<" as `!!merge <<`; go-yaml decodes that value as "<<"
            return str(node.value)
        if node.tag != _PLAIN_TAG:
            raise YamlUnsupported(f"explicit YAML tag {node.tag!r} (line {node.start_mark.line + 1})")
        try:
            return resolve_plain(node.value)
        except YamlUnsupported as error:
            raise YamlUnsupported(f"{error} (line {node.start_mark.line + 1})") from None

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            mark = key_node.start_mark
            if _is_merge_key(key_node):
                raise YamlUnsupported(f"YAML merge keys (<<) are not supported (line {mark.line + 1})")
            key = self.value(key_node)
            if not isinstance(key, str):
                raise YamlInvalid("sops supports only string keys", mark.line + 1, mark.column + 1)
            if key in result:
                raise YamlInvalid("duplicate mapping key", mark.line + 1, mark.column + 1)
            result[key] = self.value(value_node)
        return result


_MISSING = object()


def _is_merge_key(node: Node) -> bool:
    # go-yaml's isMerge: a plain or `!!merge`-tagged "<<" (a quoted "<<" is an ordinary key)
    return isinstance(node, ScalarNode) and node.value == _MERGE and node.tag in (_PLAIN_TAG, _MERGE_TAG)


def _invalid(error: yaml.MarkedYAMLError) -> YamlInvalid:
    # Only the position: PyYAML's full message quotes the offending line, which may hold a secret.
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return YamlInvalid("not valid YAML")
    return YamlInvalid("not valid YAML", mark.line + 1, mark.column + 1)


def has_comments(text: str) -> bool:
    """True when ``text`` has a YAML comment (sops keeps, and may encrypt, comments; we don't).

    A ``#`` outside every token is a comment. Scanning is only needed when a ``#`` is there at all.
    """
    if "#" not in text:
        return False
    covered = bytearray(len(text))
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            start, end = token.start_mark.index, token.end_mark.index
            if isinstance(token, yaml.ScalarToken) and token.style in ("|", ">"):
                # the header line of a block scalar may end in a comment: it is not content
                start = text.find("\n", start, end) if "\n" in text[start:end] else end
            covered[start:end] = b"\x01" * (end - start)
    except yaml.YAMLError:
        return True  # unreadable anyway; the caller reports the syntax error
    return any(char == "#" and not covered[index] for index, char in enumerate(text))


# -- writing ------------------------------------------------------------------------------------------

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"
_BREAKS = "\r\n\x85\u2028\u2029"
_OLD_BOOLS = frozenset(
    ("y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF")
)
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\x09": "t",
    "\x0a": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\x0d": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


def dump(tree: Mapping[str, Any], *, indent: int = 4) -> str:
    """``tree`` as sops 3.11 writes a YAML document (go-yaml v3, ``indent`` spaces per level)."""
    if not tree:
        return "{}\n"
    out: list[str] = []
    _Emitter(indent, out).mapping(tree, 0, inline=False)
    return "".join(out)


class _Emitter:
    """go-yaml v3's block layout: a mapping or sequence nested under a key is indented to the next
    multiple of ``indent``; content that follows a ``- `` indicator is indented by two more."""

    def __init__(self, indent: int, out: list[str]) -> None:
        self.best = indent
        self.out = out

    def deeper(self, column: int) -> int:
        return self.best * ((column + self.best) // self.best)

    def mapping(self, mapping: Mapping[str, Any], column: int, *, inline: bool) -> None:
        for position, (key, value) in enumerate(mapping.items()):
            if not (inline and position == 0):
                self.out.append(" " * column)
            self.out.append(_key_text(key) + ":")
            self.value(value, column, self.deeper(column))

    def sequence(self, items: list[Any], column: int, *, inline: bool) -> None:
        for position, item in enumerate(items):
            if not (inline and position == 0):
                self.out.append(" " * column)
            self.out.append("-")
            self.value(item, column + 2, column + 2, in_sequence=True)

    def value(self, value: Any, column: int, nested: int, *, in_sequence: bool = False) -> None:
        """Write ``value`` after a ``key:`` or ``-``; ``nested`` is where its block content goes."""
        if type(value) is str and "\n" not in value:
            # most values: a one-line string (never a literal block, see _requested_style), written
            # without asking first whether it is a Mapping (an ABC check: slow)
            self.out.append(" " + _string_text(value, simple_key=False, column=nested)[0] + "\n")
        elif isinstance(value, Mapping) and value:
            if in_sequence:
                self.out.append(" ")
                self.mapping(value, column, inline=True)
            else:
                self.out.append("\n")
                self.mapping(value, nested, inline=False)
        elif isinstance(value, list | tuple) and value:
            if in_sequence:
                self.out.append(" ")
                self.sequence(list(value), column, inline=True)
            else:
                self.out.append("\n")
                self.sequence(list(value), nested, inline=False)
        elif isinstance(value, Mapping):
            self.out.append(" {}\n")
        elif isinstance(value, list | tuple):
            self.out.append(" []\n")
        else:
            # a parser takes a block scalar's indentation indicator relative to the indentation of
            # the collection holding it: the key's column, or the column of the "- " indicator
            parent_indent = column - 2 if in_sequence else column
            self.scalar(value, nested, hint_is_valid=nested == parent_indent + self.best)

    def scalar(self, value: Any, block_column: int, *, hint_is_valid: bool) -> None:
        """Write a scalar after ``key:`` or ``-``; continuation lines go at ``block_column``."""
        text, style = scalar_text(value, block_column)
        if style != _LITERAL:
            self.out.append(" " + text + "\n")
            return
        if text[0] == "\t":
            # sops builds each value node by writing it alone and parsing that back; a lone
            # literal block whose first line starts with a tab does not parse, the error is
            # ignored and sops writes `null` (for an unencrypted value: a file whose MAC fails)
            raise YamlUnsupported("multi-line strings starting with a tab are written by sops as null")
        if _needs_indent_hint(text) and not hint_is_valid and _HAS_CONTENT.search(text):
            # go-yaml writes the indentation indicator as the indent width but puts the lines at
            # ``block_column``, which is that far from the parent's indentation only for mapping
            # values at a multiple of the indent (and, with indent 2, list items too). Elsewhere
            # the lines sit left of where the indicator says, and sops itself cannot read back
            # the file it wrote. Text made of line breaks only has no such line: that reads back.
            raise YamlUnsupported(
                "multi-line strings starting with a space or a line break, as a list item or "
                f"in a mapping inside a list (with an indent of {self.best}), are written by sops "
                "in a way that it cannot read back"
            )
        self.out.append(" " + _literal(text, block_column, self.best))


def _key_text(key: str) -> str:
    if not isinstance(key, str):
        raise YamlUnsupported(f"mapping keys must be strings, not {type(key).__name__}")
    return _cached_key_text(key)


@functools.lru_cache(maxsize=4096)
def _cached_key_text(key: str) -> str:
    # keys repeat across every state file; values are not cached (they may be secrets)
    if _LINE_BREAK.search(key) or len(key.encode("utf-8")) > _MAX_SIMPLE_KEY_BYTES:
        # go-yaml writes those as "? key" complex keys
        raise YamlUnsupported("multi-line keys and keys longer than 128 bytes are not supported")
    return _string_text(key, simple_key=True)[0]


def scalar_text(value: Any, column: int = 0) -> tuple[str, str]:
    """How go-yaml v3 writes a scalar: (text, style); literal text is the raw string.

    ``column`` is where go-yaml continues a single-quoted string after a raw U+2028 / U+2029.
    """
    if value is None:
        return "null", _PLAIN
    if isinstance(value, bool):
        return ("true" if value else "false"), _PLAIN
    if isinstance(value, int):
        check_int64(value)
        return str(value), _PLAIN
    if isinstance(value, float):
        if value == 0 and math.copysign(1.0, value) < 0:
            # go-yaml writes "-0", which reads back as the integer 0: sops' own MAC check then fails
            raise YamlUnsupported("the float -0.0 cannot be written so that sops reads it back")
        return format_float_g(value), _PLAIN
    if isinstance(value, datetime):
        return format_timestamp(value), _PLAIN
    if isinstance(value, str):
        return _string_text(value, simple_key=False, column=column)
    raise YamlUnsupported(f"values of type {type(value).__name__} are not supported")


def check_int64(value: int) -> None:
    """sops (Go) integers are 64-bit; refuse what it could not read back."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise YamlUnsupported("integers outside the signed 64-bit range are not supported")


def _string_text(value: str, *, simple_key: bool, column: int = 0) -> tuple[str, str]:
    if value == _MERGE:
        if simple_key:
            # sops writes the key as `!!merge <<`, then reads it as a merge key and fails
            raise YamlUnsupported('the mapping key "<<" is not supported (sops reads it as a merge key)')
        # sops writes the value "<<" with go-yaml's merge tag; go-yaml reads it back as "<<"
        return "!!merge <<", _PLAIN
    style = _requested_style(value)
    analysis = _Analysis(value)
    if simple_key and analysis.multiline:
        style = _DOUBLE
    if style == _PLAIN and not analysis.block_plain_allowed:
        style = _SINGLE
    if style == _SINGLE and not analysis.single_quoted_allowed:
        style = _DOUBLE
    if style == _LITERAL and (not analysis.block_allowed or simple_key):
        style = _DOUBLE
    if style == _PLAIN:
        return value, _PLAIN
    if style == _SINGLE:
        return _single_quoted(value, column), _SINGLE
    if style == _DOUBLE:
        return _double_quoted(value), _DOUBLE
    return value, _LITERAL


def _requested_style(value: str) -> str:
    """go-yaml's ``stringv``: literal for multi-line text, plain when it reads back as the same string."""
    if "\n" in value:
        return _LITERAL
    try:
        reads_back_as_string = isinstance(resolve_plain(value), str)
    except YamlUnsupported:
        reads_back_as_string = False
    if reads_back_as_string and not (_BASE60_FLOAT.match(value) or value in _OLD_BOOLS):
        return _PLAIN
    return _DOUBLE


def _is_printable(char: str) -> bool:
    # go-yaml v3's is_printable: note that it excludes U+0085 and everything above U+FFFF.
    code = ord(char)
    return (
        code == 0x0A or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


class _Analysis:
    """libyaml's ``yaml_emitter_analyze_scalar`` (block context): which styles can hold ``value``."""

    def __init__(self, value: str) -> None:
        self.multiline = False
        self.block_plain_allowed = True
        self.single_quoted_allowed = True
        self.block_allowed = True
        if not value:
            self.block_allowed = False
            return
        if _NO_SPACE_ASCII.match(value):
            # fast path for tokens, ids and ENC[...] values: only indicators can matter
            self.block_plain_allowed = not _has_block_indicator_no_space(value)
            return
        flags = _scan_scalar(value)
        self.multiline = flags["line_breaks"]
        if flags["leading_space"] or flags["leading_break"] or flags["trailing_space"]:
            self.block_plain_allowed = False
        if flags["trailing_break"]:
            self.block_plain_allowed = False
        if flags["trailing_space"]:
            self.block_allowed = False
        if flags["break_space"]:
            self.block_plain_allowed = self.single_quoted_allowed = False
        if flags["space_break"] or flags["tab_characters"] or flags["special_characters"]:
            self.block_plain_allowed = self.single_quoted_allowed = False
        if flags["space_break"] or flags["special_characters"]:
            self.block_allowed = False
        if flags["line_breaks"] or flags["block_indicators"]:
            self.block_plain_allowed = False


_NO_SPACE_ASCII = re.compile(r"[\x21-\x7e]+\Z")
_FIRST_INDICATORS = "#,[]{}&*!|>'\"%@`"
# characters go-yaml v3 does not consider printable (it escapes them in double quotes); the tab
# is not printable either, but go-yaml counts it apart: it keeps a literal block possible
_SPECIAL = re.compile(r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")


def _has_block_indicator_no_space(value: str) -> bool:
    """Block indicators of a value without spaces or breaks (as in :func:`_scan_scalar`)."""
    return (
        value.startswith(("---", "..."))
        or value[0] in _FIRST_INDICATORS
        or value in ("?", ":", "-")
        or value.endswith(":")
    )


_WS = " \t\r\n\x85\u2028\u2029"
_LINE_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
_BREAK_SPACE = re.compile("[\r\n\x85\u2028\u2029] ")
_SPACE_BREAK = re.compile(" [\r\n\x85\u2028\u2029]")
_COLON_BEFORE_SPACE = re.compile(f":(?:[{_WS}]|\\Z)")
_HASH_AFTER_SPACE = re.compile(f"[\\x00{_WS}]#")


def _scan_scalar(value: str) -> dict[str, bool]:
    """The flags of libyaml's character loop, computed with regexes (same result, a lot faster)."""
    first, last = value[0], value[-1]
    return {
        "block_indicators": (
            value.startswith(("---", "..."))
            or first in _FIRST_INDICATORS
            or (first in "?:-" and (len(value) == 1 or value[1] in _WS))
            or _COLON_BEFORE_SPACE.search(value, 1) is not None
            or _HASH_AFTER_SPACE.search(value) is not None
        ),
        "line_breaks": _LINE_BREAK.search(value) is not None,
        "special_characters": _SPECIAL.search(value) is not None,
        "tab_characters": "\t" in value,
        "leading_space": first == " ",
        "leading_break": first in _BREAKS,
        "trailing_space": last == " ",
        "trailing_break": last in _BREAKS,
        "break_space": _BREAK_SPACE.search(value) is not None,
        "space_break": _SPACE_BREAK.search(value) is not None,
    }


def _double_quoted(value: str) -> str:
    if _NO_ESCAPES.match(value):
        return f'"{value}"'
    parts = ['"']
    for char in value:
        if _is_printable(char) and char not in _BREAKS and char not in '"\\':
            parts.append(char)
        elif char in _ESCAPES:
            parts.append("\\" + _ESCAPES[char])
        elif ord(char) <= 0xFF:
            parts.append(f"\\x{ord(char):02X}")
        elif ord(char) <= 0xFFFF:
            parts.append(f"\\u{ord(char):04X}")
        else:
            parts.append(f"\\U{ord(char):08X}")
    parts.append('"')
    return "".join(parts)


# The line breaks a single-quoted or literal string can hold: go-yaml escapes \r and NEL (it does not
# consider them printable), so those strings are double-quoted.
_RAW_BREAKS = "\n\u2028\u2029"
# printable ASCII but the quote and the backslash: written as it is between double quotes
_NO_ESCAPES = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")
_RAW_BREAK = re.compile("([\n\u2028\u2029])")
_HAS_CONTENT = re.compile("[^\n\u2028\u2029]")
_SEPARATORS_BEFORE_TEXT = re.compile("[\u2028\u2029]+(?=[^\u2028\u2029])")


def _single_quoted(value: str, column: int) -> str:
    """go-yaml's single quotes: a U+2028 / U+2029 is written raw, and (as after any line break)
    the text after it is indented to ``column``; every YAML 1.1 reader drops that indentation and,
    unlike a ``\\n``, keeps the separator itself rather than folding it into a space."""
    text = value.replace("'", "''")
    if "\u2028" in value or "\u2029" in value:
        text = _SEPARATORS_BEFORE_TEXT.sub(lambda separators: separators.group() + " " * column, text)
    return f"'{text}'"


def _needs_indent_hint(value: str) -> bool:
    return value[0] == " " or value[0] in _RAW_BREAKS


def _literal(value: str, column: int, best_indent: int) -> str:
    """A ``|`` block scalar whose lines sit at ``column`` (go-yaml's hints and line handling).

    Like go-yaml, U+2028 and U+2029 count as line breaks: written raw (no ``\\n`` of their own),
    the text after them indented to ``column``. A string that ends with one is not followed by a
    ``\\n``: the next key or item goes right after it, as go-yaml writes it (and YAML reads it).
    """
    header = "|"
    if _needs_indent_hint(value):
        header += str(best_indent)
    if value[-1] not in _RAW_BREAKS:
        header += "-"
    elif len(value) == 1 or value[-2] in _RAW_BREAKS:
        header += "+"
    indent = " " * column
    # split keeps the breaks at the odd positions: indent each non-empty line between them
    parts = _RAW_BREAK.split(value)
    body = "".join(indent + part if position % 2 == 0 and part else part for position, part in enumerate(parts))
    return f"{header}\n{body}" if value[-1] in _RAW_BREAKS else f"{header}\n{body}\n"
