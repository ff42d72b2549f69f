""".sops.yaml creation rules: parsing, validation, and matching exactly as sops matches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sops_support import TOKEN_REGEX, AgeKey

from grantctl.errors import ManifestError, SopsError
from grantctl.sops import CreationRules, load

DEMO_STYLE = """\
creation_rules:
  - path_regex: (^|/)state/example-[^/]*\\.yaml$
    encrypted_regex: ^(access_token|refresh_token|id_token)$
    age: {demo}
  - path_regex: (^|/)connections/example-[^/]*\\.secrets\\.yaml$
    age: {demo}
  - path_regex: (^|/)state/[^/]*\\.yaml$
    encrypted_regex: ^(access_token|refresh_token|id_token)$
    age: {team}
  - path_regex: (^|/)connections/[^/]*\\.secrets\\.yaml$
    age: {team}
"""


@pytest.fixture
def demo_rules(tmp_path: Path, age_key: AgeKey, other_key: AgeKey) -> CreationRules:
    (tmp_path / ".sops.yaml").write_text(DEMO_STYLE.format(demo=other_key.recipient, team=age_key.recipient))
    return CreationRules.load(tmp_path / ".sops.yaml")


def test_first_matching_rule_wins_relative_to_the_config(
    demo_rules: CreationRules, tmp_path: Path, age_key: AgeKey, other_key: AgeKey
) -> None:
    example = demo_rules.rule_for(tmp_path / "state" / "example-acme.yaml")
    assert (example.number, example.age) == (1, (other_key.recipient,))
    assert example.selectors.encrypted_regex == TOKEN_REGEX
    team = demo_rules.rule_for(tmp_path / "state" / "acme-ltd.yaml")
    assert (team.number, team.age) == (3, (age_key.recipient,))
    secrets = demo_rules.rule_for(tmp_path / "connections" / "acme-ltd.secrets.yaml")
    assert secrets.number == 4
    assert secrets.selectors.unencrypted_suffix == "_unencrypted"  # sops' default when no selector is set


def test_relative_paths_are_taken_from_the_working_directory(
    demo_rules: CreationRules, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    assert demo_rules.rule_for(Path(tmp_path.name) / "state" / "acme.yaml").number == 3


def test_no_matching_rule_names_the_file_and_the_fix(demo_rules: CreationRules, tmp_path: Path) -> None:
    with pytest.raises(SopsError, match="no creation rule") as caught:
        demo_rules.rule_for(tmp_path / "notes" / "x.yaml")
    assert "'notes/x.yaml'" in str(caught.value)


def test_rule_choice_agrees_with_sops(
    demo_rules: CreationRules, tmp_path: Path, age_key: AgeKey, other_key: AgeKey, run_sops: Callable[..., Any]
) -> None:
    for relative in ("state/example-acme.yaml", "state/acme-ltd.yaml", "connections/example-x.secrets.yaml"):
        target = tmp_path / relative
        result = run_sops(
            "--config", str(tmp_path / ".sops.yaml"), "encrypt", "--filename-override", str(target),
            stdin="tokens:\n  access_token: t\nname: n\n",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.stdout)
        assert load(target).recipients == demo_rules.rule_for(target).age, relative


def test_rule_without_path_regex_matches_everything(tmp_path: Path, age_key: AgeKey) -> None:
    rules = CreationRules.parse({"creation_rules": [{"age": [age_key.recipient]}]}, tmp_path / ".sops.yaml")
    assert rules.rule_for("/anywhere/at/all.yaml").age == (age_key.recipient,)


def test_key_groups_and_recipient_lists(tmp_path: Path, age_key: AgeKey, other_key: AgeKey) -> None:
    rules = CreationRules.parse(
        {
            "creation_rules": [
                {"path_regex": "a", "key_groups": [{"age": [age_key.recipient, other_key.recipient]}]},
                {"path_regex": "b", "age": f" {age_key.recipient} , {other_key.recipient}"},
                {"path_regex": "c", "key_groups": [{"age": [age_key.recipient]}, {"age": [other_key.recipient]}]},
                {"path_regex": "d", "age": age_key.recipient, "pgp": "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"},
                {"path_regex": "e", "age": age_key.recipient, "encrypted_comment_regex": "sops:enc"},
            ]
        },
        tmp_path / ".sops.yaml",
    )
    both = (age_key.recipient, other_key.recipient)
    assert rules.rule_for(tmp_path / "a").age == both
    assert rules.rule_for(tmp_path / "a").native_blocker is None
    assert rules.rule_for(tmp_path / "b").age == both
    assert "Shamir" in str(rules.rule_for(tmp_path / "c").native_blocker)
    assert "other than age" in str(rules.rule_for(tmp_path / "d").native_blocker)
    assert "comment" in str(rules.rule_for(tmp_path / "e").native_blocker)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"age": "age1notarecipient"}, "not a valid age recipient"),
        ({"age": "{r}", "encrypted_regex": "a", "unencrypted_suffix": "_x"}, "more than one"),
        ({"age": "{r}", "encrypted_regex": "("}, "not a valid regex"),
        ({"age": "{r}", "path_regex": "("}, "not a valid regex"),
        ({"age": "{r}", "mac_only_encrypted": "yes"}, "true or false"),
    ],
)
def test_invalid_rules_are_manifest_errors(tmp_path: Path, age_key: AgeKey, rule: dict[str, str], problem: str) -> None:
    rule = {key: value.replace("{r}", age_key.recipient) for key, value in rule.items()}
    with pytest.raises(ManifestError, match=problem) as caught:
        CreationRules.parse({"creation_rules": [rule]}, tmp_path / ".sops.yaml")
    assert str(tmp_path / ".sops.yaml") in str(caught.value)


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="sops config not found"):
        CreationRules.load(tmp_path / ".sops.yaml")
    (tmp_path / ".sops.yaml").write_text("creation_rules: [\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        CreationRules.load(tmp_path / ".sops.yaml")
    (tmp_path / ".sops.yaml").write_text("stores:\n  yaml:\n    indent: 2\ncreation_rules: []\n")
    assert CreationRules.load(tmp_path / ".sops.yaml").indent == 2
