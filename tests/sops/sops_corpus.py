"""A document full of values that YAML 1.1, YAML 1.2 and go-yaml v3 disagree about."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from grantctl.sops import _goyaml

TRICKY_STRINGS = [
    "",
    " ",
    "  lead",
    "trail ",
    "a: b",
    "a #b",
    "#b",
    "- x",
    "-x",
    "? x",
    ":x",
    "x:",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "n",
    "true",
    "True",
    "null",
    "~",
    "1",
    "-1",
    "+1",
    "1.5",
    "1e3",
    "1E3",
    "1e",
    "0x1F",
    "012",
    "09",
    "0b101",
    "0o17",
    "1_000",
    "1:20",
    ".inf",
    ".5",
    ".Nan",
    "1e400",
    "99999999999999999999",
    "18446744073709551615",
    "9223372036854775807",
    "2024-01-02",
    "2024-1-2",
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05",
    "2024-01-02 03:04:05",
    "2024-01-02T03:04:05.123456789Z",
    "2024-13-02",
    "it's",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "ctl\x01x",
    "nul\x00x",
    "nbsp\xa0x",
    "bom\ufeff",
    "emoji 😀",
    "é ☃ ü",
    "space \u2028 sep",
    "sep\u2028line",
    "para\u2029graph",
    "\u2028lead",
    "trail\u2028",
    "trails\u2028\u2029",
    "two\u2028\u2028seps",
    "it's\u2028'q'",
    "multi\nline\u2028sep",
    "ends\nwith a sep\u2028",
    "\u2028\n",
    "\n\u2029",
    "x\n\u2028",
    "nel\x85x",
    "line1\nline2\n",
    "line1\nline2",
    "a\n\nb\n\n",
    " lead\nx",
    "\nfoo",
    "trail \nx",
    "x\n",
    "\n",
    "\n\n",
    "tab\tin\nmulti",
    "---",
    "...",
    "--- x",
    "[a]",
    "{a}",
    "a,b",
    "a[b]",
    "&a",
    "*a",
    "!a",
    "|a",
    ">a",
    "%a",
    "@a",
    "`a",
    "'q'",
    '"q"',
    "=",
    "<<",
    "<<x",
    "-",
    "?",
    ":",
    "ENC[not really]",
    "https://x.example/cb?a=1&b=2#frag",
    "Organisation call returned 403 AuthenticationUnsuccessful: tenant removed " * 3,
]

# Line breaks as go-yaml writes them raw in a literal block (it escapes \r and NEL).
_RAW_BREAKS = "\n\u2028\u2029"
_CONTENT = re.compile(f"[^{_RAW_BREAKS}]")


def list_item_ok(text: str) -> bool:
    """False for what go-yaml writes unreadably as a list item (with any indent but 2): a literal
    block (text with a newline) that starts with a space or a line break and has a line of content."""
    literal_with_hint = "\n" in text and (text[0] == " " or text[0] in _RAW_BREAKS)
    return not literal_with_hint or not _CONTENT.search(text)


TRICKY_KEYS = ["yes", "n", "a: b", "", "#k", "key with space", "ключ", "1", "null", "-", "x_unencrypted"]


def typed(value: Any) -> Any:
    """A form where 1, 1.0 and True differ (Python's == says they are equal)."""
    if isinstance(value, dict):
        return ("map", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return ("list", [typed(item) for item in value])
    if isinstance(value, datetime):
        return ("time", _goyaml.format_timestamp(value))
    return (type(value).__name__, repr(value))


def tricky_tree() -> dict[str, Any]:
    """Every tricky value, under a few shapes (mapping values, list items, nested lists)."""
    numbers: list[Any] = [0, -1, 7, 9223372036854775807, -9223372036854775808]
    floats: list[Any] = [1.5, -0.25, 1e6, 1e-7, 123456.0, 1234567.0, 3.0, 1e21, 5e-324, 1.7976931348623157e308]
    floats += [float("inf"), float("-inf"), 0.1 + 0.2, 100.0, 0.0001]
    times = [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
    ]
    tree: dict[str, Any] = {
        "strings": {f"s{index:03d}": value for index, value in enumerate(TRICKY_STRINGS)},
        # in a list, go-yaml cannot write a block scalar that starts with a space or line break
        # (unless it is only line breaks): sops could not read the file back
        "string_list": [text for text in TRICKY_STRINGS if list_item_ok(text)],
        "keys": {key: f"value of {key!r}" for key in TRICKY_KEYS},
        "numbers": numbers,
        "floats": floats,
        "bools": [True, False],
        "nothing": None,
        "times": times,
        "empty_map": {},
        "empty_list": [],
        "nested": [[1, [2, ["deep", {"k": "v"}]]], {"a": [], "b": {}}, [{"x": "line\nbreak"}]],
        "tokens": {"access_token": "tok-a", "refresh_token": "tok-r", "id_token": "", "list": ["in", "list"]},
        "links": [{"issued_at": times[0], "scopes": ["a", "b"], "access_token": "nested-token"}],
        "last": "plain",
    }
    return tree


# Plain scalars as a person might write them; each line checks one go-yaml v3 resolution rule.
# (-0.0 is left out: sops writes it back as "-0", the integer 0, and fails its own MAC check.)
HAND_WRITTEN_PLAIN_SCALARS = """\
-0
+0
00
0.0
-.5
+.5
1e+3
1E-3
.5e3
.e3
1__0
_1
0x_1F
0b
0x
+0x10
-0o10
-012
-09
1.2.3
2024-01-02T03:04:05.5Z
2024-01-02T03:04:05,5Z
2024-01-02T3:4:5Z
2024-01-02 3:04:05
2024-01-02  03:04:05
2024-01-02T03:04:05+0200
2024-01-02T03:04:05 +02:00
2024-02-30
2024-01-02T24:00:00Z
0001-01-01
2024-01-02T03:04:05-00:00
12:30
-1:20
.NaN
-.nan
+.Inf
Yes
ON
<<x
=
..
--
~~
nullx
NULL
nULL
tRUE
-9223372036854775809
18446744073709551616
1e308
1e309
0x7FFFFFFFFFFFFFFF
""".splitlines()
