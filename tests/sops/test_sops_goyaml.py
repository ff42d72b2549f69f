"""go-yaml v3 rules for reading and writing scalars (what sops' MAC is computed over)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sops_corpus import tricky_tree

from grantctl.sops import _goyaml
from grantctl.sops._format import MAC_ONLY_ENCRYPTED_INIT, type_and_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", "on"),  # YAML 1.1 (PyYAML) says True; go-yaml v3 and so sops say "on"
        ("yes", "yes"),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("", None),
        ("012", 10),  # Go's ParseInt(s, 0, 64): leading zero is octal
        ("09", 9.0),  # not octal, so a float
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("-0b101", -5),
        ("1_000", 1000),
        ("+12", 12),
        ("1e3", 1000.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e", "1e"),
        ("1e400", "1e400"),  # overflow: ParseFloat fails, the text stays a string
        ("1:20", "1:20"),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("9223372036854775807", 9223372036854775807),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-1-2", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02t03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", "2024-01-02T03:04:05"),  # the T layout needs a zone
        ("2024-13-02", "2024-13-02"),
        ("ENC[AES256_GCM,data:x]", "ENC[AES256_GCM,data:x]"),
        ("<<", "<<"),  # a merge key only in a key's place; as a value go-yaml decodes the string
    ],
)
def test_plain_scalars_resolve_like_go_yaml_v3(text: str, expected: object) -> None:
    value = _goyaml.resolve_plain(text)
    assert type(value) is type(expected)
    assert value == expected


def test_timestamp_with_offset_keeps_its_offset() -> None:
    value = _goyaml.resolve_plain("2024-01-02T03:04:05.120+02:00")
    assert value == datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=2)))
    assert _goyaml.format_timestamp(value) == "2024-01-02T03:04:05.12+02:00"


def test_values_sops_cannot_handle_are_refused_not_guessed() -> None:
    with pytest.raises(_goyaml.YamlUnsupported, match="above 9223372036854775807"):
        _goyaml.resolve_plain("18446744073709551615")
    with pytest.raises(_goyaml.YamlUnsupported, match="sub-microsecond"):
        _goyaml.resolve_plain("2024-01-02T03:04:05.123456789Z")
    with pytest.raises(_goyaml.YamlUnsupported, match="several YAML documents"):
        _goyaml.load("a: 1\n---\nb: 2\n")
    with pytest.raises(_goyaml.YamlUnsupported, match="merge"):
        _goyaml.load("base: &b {x: 1}\nother:\n  <<: *b\n")
    with pytest.raises(_goyaml.YamlUnsupported, match="merge"):
        _goyaml.load("base: &b {x: 1}\nother:\n  !!merge <<: *b\n")
    with pytest.raises(_goyaml.YamlUnsupported, match="tag"):
        _goyaml.load("a: !!merge other\n")
    with pytest.raises(_goyaml.YamlUnsupported, match="tag"):
        _goyaml.load("a: !!binary aGVsbG8=\n")


def test_invalid_yaml_reports_the_position_but_never_the_content() -> None:
    with pytest.raises(_goyaml.YamlInvalid) as caught:
        _goyaml.load("client_secret: CLIENT-SECRET-q8w7e6r5t4\nbad: [unclosed\n")
    assert caught.value.line is not None
    assert "CLIENT-SECRET" not in str(caught.value)


def test_duplicate_and_non_string_keys_are_invalid_as_in_sops() -> None:
    with pytest.raises(_goyaml.YamlInvalid, match="duplicate"):
        _goyaml.load("a: 1\na: 2\n")
    with pytest.raises(_goyaml.YamlInvalid, match="string keys"):
        _goyaml.load("1: one\n")


@pytest.mark.parametrize(
    ("value", "g", "f"),
    [
        (1.5, "1.5", "1.5"),
        (1000.0, "1000", "1000"),
        (1e6, "1e+06", "1000000"),
        (1234567.0, "1.234567e+06", "1234567"),
        (1e-7, "1e-07", "0.0000001"),
        (0.0001, "0.0001", "0.0001"),
        (1e21, "1e+21", "1000000000000000000000"),
        (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
        (math.inf, ".inf", "+Inf"),
        (-math.inf, "-.inf", "-Inf"),
        (0.0, "0", "0"),
    ],
)
def test_floats_format_like_go(value: float, g: str, f: str) -> None:
    assert _goyaml.format_float_g(value) == g
    assert _goyaml.format_float_f(value) == f


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain text", "plain text"),
        ("on", '"on"'),
        ("y", '"y"'),
        ("1", '"1"'),
        ("", '""'),
        ("2024-01-02", '"2024-01-02"'),
        ("a: b", "'a: b'"),
        ("#x", "'#x'"),
        ("it's", "it's"),
        ("tab\there", '"tab\\there"'),
        ("emoji 😀", '"emoji \\U0001F600"'),
        ("bom\ufeff", '"bom\\uFEFF"'),
        ("1:20", '"1:20"'),
    ],
)
def test_strings_are_quoted_like_go_yaml(value: str, written: str) -> None:
    assert _goyaml.dump({"k": value}) == f"k: {written}\n"


def test_layout_matches_sops_indentation() -> None:
    tree = {
        "a": {"b": [1, {"c": "x", "d": ["y"]}, [2, 3]], "e": "line1\nline2\n"},
        "f": [],
        "g": {},
        "h": None,
        "i": ["l1\nl2"],
    }
    assert _goyaml.dump(tree) == (
        "a:\n"
        "    b:\n"
        "        - 1\n"
        "        - c: x\n"
        "          d:\n"
        '            - "y"\n'
        "        - - 2\n"
        "          - 3\n"
        "    e: |\n"
        "        line1\n"
        "        line2\n"
        "f: []\n"
        "g: {}\n"
        "h: null\n"
        "i:\n"
        "    - |-\n"
        "      l1\n"
        "      l2\n"
    )


def test_literal_hints() -> None:
    assert _goyaml.dump({"k": " lead\nx"}) == "k: |4-\n     lead\n    x\n"
    assert _goyaml.dump({"k": "a\n\n"}) == "k: |+\n    a\n\n"


def test_other_line_breaks_are_escaped_not_written_raw() -> None:
    # go-yaml does not consider \r or NEL printable: such text goes double-quoted
    assert _goyaml.dump({"k": "a\nb\rc"}) == 'k: "a\\nb\\rc"\n'
    # next to a space, a U+2028 cannot be written raw in single quotes
    assert _goyaml.dump({"k": "a \u2028 b"}) == 'k: "a \\L b"\n'


# Bytes from `sops decrypt` of a JSON input (sops 3.11, indent 4). U+2028 and U+2029 are line
# breaks to YAML 1.1: go-yaml writes them raw and indents the text after them; readers drop that
# indentation but keep the separator (only a "\n" is folded into a space).
SEPARATORS_AS_SOPS_WRITES_THEM = [
    ({"k": "a\u2028b"}, "k: 'a\u2028    b'\n"),
    ({"k": "a\u2029b"}, "k: 'a\u2029    b'\n"),
    ({"k": "\u2028a"}, "k: '\u2028    a'\n"),
    ({"k": "a\u2028"}, "k: 'a\u2028'\n"),
    ({"k": "a\u2028\u2029"}, "k: 'a\u2028\u2029'\n"),
    ({"k": "a\u2028\u2028b"}, "k: 'a\u2028\u2028    b'\n"),
    ({"k": "\u2028'"}, "k: '\u2028    '''\n"),
    ({"l": ["a\u2028b"]}, "l:\n    - 'a\u2028      b'\n"),
    ({"l": [{"k": "a\u2028b"}]}, "l:\n    - k: 'a\u2028        b'\n"),
    ({"k": "a\nb\u2028c"}, "k: |-\n    a\n    b\u2028    c\n"),
    ({"k": "a\u2028\nb"}, "k: |-\n    a\u2028\n    b\n"),
    ({"k": "\u2028\na", "z": 1}, "k: |4-\n\u2028\n    a\nz: 1\n"),
    ({"k": "\n\u2028", "z": 1}, "k: |4+\n\n\u2028z: 1\n"),
    # a literal that ends with a separator gets no newline: what follows comes right after it
    ({"k": "a\nb\u2028", "z": 1}, "k: |\n    a\n    b\u2028z: 1\n"),
    ({"m": {"k": "a\nb\u2028", "z": 1}}, "m:\n    k: |\n        a\n        b\u2028    z: 1\n"),
    ({"l": ["a\nb\u2028", "z"]}, "l:\n    - |\n      a\n      b\u2028    - z\n"),
    ({"k": "a\nb\u2028"}, "k: |\n    a\n    b\u2028"),
]


@pytest.mark.parametrize(("tree", "written"), SEPARATORS_AS_SOPS_WRITES_THEM)
def test_unicode_separators_are_written_raw_as_go_yaml_does_and_read_back(
    tree: dict[str, object], written: str
) -> None:
    assert _goyaml.dump(tree) == written
    assert _goyaml.load(written) == tree


def test_raw_separators_do_not_look_like_comments() -> None:
    written = _goyaml.dump({"k": "#a\u2028#b", "l": ["x\n#y\u2028 #z\u2028"]})
    assert "\u2028    #b" in written
    assert not _goyaml.has_comments(written)


def test_the_string_merge_key_is_written_with_the_merge_tag_as_sops_does() -> None:
    tree = {"k": "<<", "l": ["<<", "<<x"], "m": {"x": "<<"}}
    written = _goyaml.dump(tree)
    assert written == "k: !!merge <<\nl:\n    - !!merge <<\n    - <<x\nm:\n    x: !!merge <<\n"
    assert _goyaml.load(written) == tree
    # as a person may write it: each is the string, the way go-yaml decodes a value
    assert _goyaml.load('a: <<\nb: "<<"\nc: !!merge "<<"\nd: !!str <<\n') == dict.fromkeys("abcd", "<<")
    assert _goyaml.load('"<<": 1\n') == {"<<": 1}  # quoted, it is an ordinary key


def test_block_scalars_with_an_indentation_indicator_in_lists() -> None:
    assert _goyaml.dump({"k": {"name": " lead\nx"}}) == "k:\n    name: |4-\n         lead\n        x\n"
    # only line breaks: no line the misplaced indicator could cut off, so sops reads it back
    assert _goyaml.dump({"l": ["\n"]}) == "l:\n    - |4+\n\n"
    assert _goyaml.dump({"l": ["\n\n", "x"]}) == "l:\n    - |4+\n\n\n    - x\n"
    assert _goyaml.dump({"l": [{"n": "\u2028\n"}]}) == 'l:\n    - "n": |4+\n\u2028\n'
    # with an indent of 2 the indicator matches where go-yaml puts the lines
    assert _goyaml.dump({"l": [" a\nb"]}, indent=2) == "l:\n  - |2-\n     a\n    b\n"
    assert _goyaml.dump({"l": [{"k": "\nb"}]}, indent=2) == "l:\n  - k: |2-\n\n      b\n"
    for tree, indent in (({"l": [" a\nb"]}, 2), ({"l": [{"k": "\nb"}]}, 2), ({"l": ["\n"]}, 4)):
        assert _goyaml.load(_goyaml.dump(tree, indent=indent)) == tree


def test_block_scalars_go_yaml_would_write_unreadably_are_refused() -> None:
    # sops writes "- |4-" with the lines two columns in, then fails to read its own file
    for tree in ({"k": [" lead\nx"]}, {"k": [{"n": "\nx"}]}, {"k": ["\u2028\nx"]}, {"k": [[" a\nb"]]}):
        with pytest.raises(_goyaml.YamlUnsupported, match="multi-line"):
            _goyaml.dump(tree)
    with pytest.raises(_goyaml.YamlUnsupported, match="multi-line"):
        _goyaml.dump({"k": [" lead\nx"]}, indent=3)


def test_values_sops_cannot_read_back_are_refused() -> None:
    with pytest.raises(_goyaml.YamlUnsupported, match="merge key"):
        _goyaml.dump({"<<": "v"})  # written as `!!merge <<: v`, which sops reads as a merge
    with pytest.raises(_goyaml.YamlUnsupported):
        _goyaml.dump({"k": -0.0})  # "-0" reads back as the integer 0
    for text in ("\tlead\nx", "\t\n"):  # sops writes these as null
        with pytest.raises(_goyaml.YamlUnsupported, match="tab"):
            _goyaml.dump({"k": text})
    assert _goyaml.dump({"k": "x\n\ty"}) == "k: |-\n    x\n    \ty\n"  # a tab further on is fine


def test_every_corpus_string_reads_back_as_written() -> None:
    tree = tricky_tree()
    back = _goyaml.load(_goyaml.dump(tree))
    assert back["strings"] == tree["strings"]
    assert back["string_list"] == tree["string_list"]
    assert back["keys"] == tree["keys"]


def test_comments_are_detected_outside_strings_only() -> None:
    assert _goyaml.has_comments("# top\na: 1\n")
    assert _goyaml.has_comments("a: 1 # trailing\n")
    assert _goyaml.has_comments("a: |  # header comment\n  text\n")
    assert not _goyaml.has_comments("a: 'x # not a comment'\nb: https://x.example/#frag\n")
    assert not _goyaml.has_comments("a: |\n  # inside the block\n")
    assert not _goyaml.has_comments("a: 1\n")


def test_mac_bytes_follow_sops_to_bytes() -> None:
    assert type_and_bytes(True) == ("bool", b"True")
    assert type_and_bytes(3.0) == ("float", b"3")
    assert type_and_bytes(datetime(2024, 1, 2, tzinfo=UTC)) == ("time", b"2024-01-02T00:00:00Z")
    assert type_and_bytes("é") == ("str", "é".encode())
    # sops.MACOnlyEncryptedInitialization, copied from sops.go
    assert MAC_ONLY_ENCRYPTED_INIT.hex() == "8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69"


def test_keys_go_yaml_would_write_as_complex_keys_are_refused() -> None:
    for key in ("two\nlines", "k" * 129):
        with pytest.raises(_goyaml.YamlUnsupported, match="keys"):
            _goyaml.dump({key: 1})
    assert _goyaml.dump({"k" * 128: 1}) == "k" * 128 + ": 1\n"


def test_public_names_are_exported_and_sorted() -> None:
    import grantctl.sops as package

    assert package.__all__ == sorted(package.__all__)
    for name in package.__all__:
        assert getattr(package, name) is not None
