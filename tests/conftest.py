"""Suite-wide fixtures: no test reads or writes the real home directory or inherits real keys."""

from __future__ import annotations

from pathlib import Path

import pytest

SECRET_ENV = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "GRANTCTL_SIGNING_KEY", "GRANTCTL_POSTGRES_DSN")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    return home
