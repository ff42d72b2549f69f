"""The app credentials file cannot be used: the message names the file and says what to do about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantctl.errors import GrantctlError
from grantctl.server import load_client_credentials

SHOWN = "connections/acme-ltd.secrets.yaml"


def test_a_missing_credentials_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(GrantctlError) as caught:
        load_client_credentials(tmp_path / "absent.secrets.yaml", lambda _path: {}, SHOWN)
    message = str(caught.value)
    assert message.startswith(f"{SHOWN}: the credentials file does not exist")
    assert "restore it from git" in message
    assert "client_id and client_secret" in message


@pytest.mark.parametrize("document", [{}, {"client_id": "CID"}, {"client_id": "CID", "client_secret": ""}])
def test_incomplete_credentials_say_how_to_fix_them(tmp_path: Path, document: dict[str, str]) -> None:
    path = tmp_path / "acme-ltd.secrets.yaml"
    path.write_text("encrypted: elsewhere\n")
    with pytest.raises(GrantctlError) as caught:
        load_client_credentials(path, lambda _path: document, SHOWN)
    message = str(caught.value)
    assert message.startswith(f"{SHOWN}: expected non-empty `client_id` and `client_secret` values")
    assert f"sops edit {SHOWN}" in message
