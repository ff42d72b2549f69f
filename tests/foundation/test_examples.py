"""The bundled example-* secrets open with the committed demo key, and with nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from pyrage import x25519

from grantctl.sops.binary import find_sops

PROJECT = Path(__file__).resolve().parents[2]
DEMO_KEY = PROJECT / "examples" / "demo-age-key.txt"
SECRETS = sorted((PROJECT / "connections").glob("example-*.secrets.yaml"))


def decrypt(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    sops = find_sops()
    assert sops is not None
    base = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}
    return subprocess.run(
        [sops, "decrypt", str(path)], capture_output=True, text=True, env={**base, **env}, check=False
    )


def test_there_are_five_example_connections() -> None:
    assert [p.name.removesuffix(".secrets.yaml") for p in SECRETS] == [
        "example-acme-granular",
        "example-bluebird-broad",
        "example-harbour-pinned",
        "example-hubspot-crm",
        "example-pipedrive-sales",
    ]


@pytest.mark.parametrize("path", SECRETS, ids=lambda p: p.name)
def test_example_credentials_open_with_the_demo_key_only(path: Path, tmp_path: Path) -> None:
    opened = decrypt(path, {"SOPS_AGE_KEY_FILE": str(DEMO_KEY)})
    assert opened.returncode == 0, opened.stderr
    assert set(yaml.safe_load(opened.stdout)) == {"client_id", "client_secret"}

    other = tmp_path / "other.agekey"
    other.write_text(f"{x25519.Identity.generate()}\n")
    assert decrypt(path, {"SOPS_AGE_KEY_FILE": str(other)}).returncode != 0
    assert decrypt(path, {}).returncode != 0


def test_example_state_tokens_open_with_the_demo_key() -> None:
    for path in sorted((PROJECT / "state").glob("example-*.yaml")):
        opened = decrypt(path, {"SOPS_AGE_KEY_FILE": str(DEMO_KEY)})
        assert opened.returncode == 0, (path, opened.stderr)
        assert "refresh_token" in yaml.safe_load(opened.stdout)["tokens"]
