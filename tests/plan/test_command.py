"""``run_plan`` and ``grantctl plan`` on a real connections repo on disk."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from grantctl.commands.plan import read_state_grants, run_plan
from grantctl.errors import EXIT_CHANGES, EXIT_OK, GrantctlError, ManifestError, StateError

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())


def _cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grantctl", "plan", "--repo", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_text_plan_of_a_mixed_repo(mixed_repo: Any, make: Any) -> None:
    outcome = run_plan(mixed_repo.repo, now=make.NOW)

    assert outcome.exit_code == EXIT_OK
    assert "  + connect  new-client (New Client Ltd)" in outcome.output
    assert "  ~ extend  needs-more (Acme Ltd)" in outcome.output
    assert "-/+ reduce  has-too-much (Acme Ltd)" in outcome.output
    assert "  - orphan  gone (Gone Ltd)" in outcome.output
    assert "matching" not in outcome.output
    assert outcome.output.endswith("Plan: 1 to connect, 1 to reduce, 1 to extend, 1 to revoke.\n")


@pytest.mark.parametrize(
    ("detailed", "changes", "expected"),
    [(True, True, EXIT_CHANGES), (True, False, EXIT_OK), (False, True, EXIT_OK), (False, False, EXIT_OK)],
)
def test_detailed_exitcode(plan_repo: Any, make: Any, detailed: bool, changes: bool, expected: int) -> None:
    plan_repo.add_manifest("acme-ltd")
    plan_repo.add_state(make.grant("acme-ltd", scopes=["openid"] if changes else make.DESIRED))

    outcome = run_plan(plan_repo.repo, detailed_exitcode=detailed, now=make.NOW)

    assert outcome.exit_code == expected


def test_cli_exit_codes_0_1_2(plan_repo: Any, make: Any) -> None:
    plan_repo.add_manifest("acme-ltd")
    plan_repo.add_state(make.grant("acme-ltd"))
    unchanged = _cli(plan_repo.root, "--detailed-exitcode")
    plan_repo.add_manifest("new-client")
    changed = _cli(plan_repo.root, "--detailed-exitcode")
    (plan_repo.root / "connections" / "broken.yaml").write_text("apiVersion: grantctl/v1\nkind: [unclosed\n")
    broken = _cli(plan_repo.root, "--detailed-exitcode")

    assert (unchanged.returncode, unchanged.stdout) == (0, "No changes. 1 connection matches its grant.\n")
    assert changed.returncode == 2
    assert changed.stdout.endswith("Plan: 1 to connect.\n")
    assert broken.returncode == 1
    assert re.search(r"connections/broken\.yaml:\d+:\d+: invalid YAML", broken.stderr)
    assert broken.stdout == ""


def test_runs_with_no_sops_key_and_no_sops_binary(mixed_repo: Any, tmp_path: Path) -> None:
    # No key variables, an empty HOME and a PATH without sops or git: plan must not need any of them.
    env = {"PATH": str(tmp_path / "empty-bin"), "HOME": str(tmp_path / "nohome"), "LC_ALL": "C.UTF-8"}

    done = _cli(mixed_repo.root, "--format", "json", "--detailed-exitcode", env=env)

    assert done.returncode == 2, done.stderr
    document = json.loads(done.stdout)
    Draft202012Validator(SCHEMA).validate(document)
    assert [a["kind"] for a in document["actions"]] == ["orphan", "reduce", "extend", "connect"]


def test_out_saves_the_json_plan_atomically(mixed_repo: Any, make: Any, tmp_path: Path) -> None:
    out = tmp_path / "plans" / "plan.json"
    out.parent.mkdir()
    out.write_text("old plan")

    outcome = run_plan(mixed_repo.repo, fmt="markdown", out=out, now=make.NOW)

    saved = json.loads(out.read_text())
    Draft202012Validator(SCHEMA).validate(saved)
    assert saved["summary"]["actions"] == 4
    assert outcome.output.startswith("### grantctl plan")  # stdout keeps the chosen format
    assert [p.name for p in out.parent.iterdir()] == ["plan.json"]  # no temp file left behind
    assert outcome.notes == [f"Saved the plan to {out}; run `grantctl apply --plan {out}` to carry it out."]


def test_same_inputs_give_byte_identical_output(mixed_repo: Any, make: Any) -> None:
    for fmt in ("text", "json", "markdown"):
        first = run_plan(mixed_repo.repo, fmt=fmt, now=make.NOW).output
        second = run_plan(mixed_repo.repo, fmt=fmt, now=make.NOW).output
        assert first.encode() == second.encode()


def test_no_secret_reaches_any_output(mixed_repo: Any, make: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    texts = [run_plan(mixed_repo.repo, fmt=fmt, now=make.NOW, out=out).output for fmt in ("text", "json", "markdown")]
    texts.append(out.read_text())

    for text in texts:
        assert make.REFRESH_TOKEN not in text
        assert make.ACCESS_TOKEN not in text
        assert "ENC[" not in text


def test_invalid_state_names_file_and_field_but_not_the_value(plan_repo: Any, make: Any) -> None:
    plan_repo.add_manifest("acme-ltd")
    path = plan_repo.add_state(make.grant("acme-ltd"))
    path.write_text(path.read_text().replace("consecutive_failures: 0", "consecutive_failures: sk-LEAKY-VALUE-123"))

    with pytest.raises(StateError) as caught:
        run_plan(plan_repo.repo, now=make.NOW)

    message = str(caught.value)
    assert message.startswith("state/acme-ltd.yaml: consecutive_failures: ")
    assert "sk-LEAKY-VALUE-123" not in message


def test_state_with_broken_yaml_points_at_the_line(plan_repo: Any, make: Any) -> None:
    path = plan_repo.root / "state" / "acme-ltd.yaml"
    path.write_text("connection: acme-ltd\nprovider: xero\ngranted_scopes: [openid\n")

    with pytest.raises(StateError, match=r"acme-ltd\.yaml:4:1: invalid YAML"):
        run_plan(plan_repo.repo, now=make.NOW)


def test_state_for_another_connection_is_refused(plan_repo: Any, make: Any) -> None:
    (plan_repo.root / "state" / "acme-ltd.yaml").write_text(make.state_file_text(make.grant("other")))

    with pytest.raises(StateError, match="the document is for connection 'other', not 'acme-ltd'"):
        run_plan(plan_repo.repo, now=make.NOW)


def test_invalid_manifest_is_reported_with_its_location(plan_repo: Any, make: Any) -> None:
    path = plan_repo.add_manifest("acme-ltd")
    path.write_text(path.read_text().replace("provider: xero", "provider: sage"))

    with pytest.raises(ManifestError, match=r"acme-ltd\.yaml:\d+:\d+"):
        run_plan(plan_repo.repo, now=make.NOW)


def test_unknown_format_is_refused(plan_repo: Any) -> None:
    with pytest.raises(GrantctlError, match="choose one of: text, json, markdown"):
        run_plan(plan_repo.repo, fmt="yaml")


def test_hidden_and_lock_files_in_state_are_ignored(plan_repo: Any, make: Any) -> None:
    plan_repo.add_manifest("acme-ltd")
    plan_repo.add_state(make.grant("acme-ltd"))
    (plan_repo.root / "state" / ".locks").mkdir()
    (plan_repo.root / "state" / ".locks" / "acme-ltd.lock").write_text("")
    (plan_repo.root / "state" / ".acme-ltd.yaml.1234.tmp").write_text("half written")

    assert run_plan(plan_repo.repo, now=make.NOW).output == "No changes. 1 connection matches its grant.\n"


@pytest.mark.parametrize(
    "tokens_and_sops",
    [
        "tokens: {access_token: 'ENC[AES256_GCM,data:x]', refresh_token: 'ENC[AES256_GCM,data:y]'}\n"
        "sops: {version: 3.11.0}",
        "# a comment\ntokens:\n    access_token: ENC[AES256_GCM,data:x]\n\n"
        "    # inside\n    refresh_token: ENC[AES256_GCM,data:y]\n"
        "sops:\n  mac: ENC[z]",
        "sops:\n  age:\n    - enc: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        abc\n        -----END\n"
        "tokens: {}",
    ],
    ids=["flow", "comments-and-blank-lines", "block-scalar-and-no-final-newline"],
)
def test_state_reading_skips_token_and_sops_blocks_exactly(
    plan_repo: Any, make: Any, tokens_and_sops: str, tmp_path: Path
) -> None:
    expected = make.grant("acme-ltd", idle_days=50, last_health={"status": "healthy", "at": "2027-01-10T00:00:00Z"})
    grant_text = yaml.safe_dump(expected.to_document(), sort_keys=False)
    path = plan_repo.root / "state" / "acme-ltd.yaml"
    head, tail = grant_text.split("granted_scopes:", 1)
    path.write_text(f"{head}{tokens_and_sops}\ngranted_scopes:{tail}".rstrip("\n"))

    assert read_state_grants(plan_repo.root / "state") == {"acme-ltd": expected}


def test_plan_imports_only_what_it_needs(mixed_repo: Any) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from grantctl.models import Config\n"
        "from grantctl.repo import Repo\n"
        "from grantctl.commands.plan import run_plan\n"
        "config = Config.model_validate({'apiVersion': 'grantctl/v1', 'kind': 'Config', 'publicUrl': 'https://c.example'})\n"
        "for fmt in ('text', 'json', 'markdown'):\n"
        "    run_plan(Repo(Path(sys.argv[1]), config), fmt=fmt)\n"
        "heavy = ('jsonschema', 'httpx', 'starlette', 'uvicorn', 'deepdiff', 'cryptography', 'pyrage', 'click')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(mixed_repo.root)], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]"


def test_other_backends_go_through_a_store(plan_repo: Any, make: Any) -> None:
    from grantctl.models import Config
    from grantctl.repo import Repo
    from grantctl.state.base import MemoryStore

    config = Config.model_validate(
        {
            "apiVersion": "grantctl/v1",
            "kind": "Config",
            "publicUrl": "https://c.example",
            "state": {"backend": "postgres"},
        }
    )
    repo = Repo(plan_repo.root, config)
    plan_repo.add_manifest("acme-ltd")
    store = MemoryStore()
    with store.lock("acme-ltd"):
        store.write("acme-ltd", make.grant("acme-ltd"))

    with pytest.raises(GrantctlError):  # not available yet, or no DSN in this environment
        run_plan(repo, now=make.NOW)
    assert run_plan(repo, now=make.NOW, store=store).output == "No changes. 1 connection matches its grant.\n"


def test_garbage_collector_is_back_on_after_a_failed_plan(plan_repo: Any) -> None:
    (plan_repo.root / "connections" / "broken.yaml").write_text("kind: [\n")

    with pytest.raises(ManifestError):
        run_plan(plan_repo.repo)

    assert gc.isenabled()


def test_cyclic_gc_is_paused_while_loading_and_resumed_after(plan_repo: Any, make: Any) -> None:
    from grantctl.state.base import MemoryStore

    seen: list[bool] = []

    class RecordingStore(MemoryStore):
        def read_grants(self) -> dict[str, Any]:
            seen.append(gc.isenabled())
            return {}

    run_plan(plan_repo.repo, store=RecordingStore(), now=make.NOW)

    assert seen == [False]
    assert gc.isenabled()


def test_plaintext_tokens_in_a_state_file_stop_the_plan(plan_repo: Any, make: Any) -> None:
    plan_repo.add_manifest("acme-ltd")
    plan_repo.add_state(make.grant("acme-ltd"), tokens={"refresh_token": "plain-refresh-token-value-123"})
    with pytest.raises(StateError) as caught:
        run_plan(plan_repo.repo)
    message = str(caught.value)
    assert "refresh_token not encrypted: treat the token as leaked" in message
    assert "plain-refresh-token-value-123" not in message
