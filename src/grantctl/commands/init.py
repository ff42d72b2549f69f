"""``grantctl init [DIR]``: scaffold a connections repo with a fresh age key.

The private key is written OUTSIDE the repo (0600) and only its path is printed; the repo gets the
public recipient in ``.sops.yaml`` and an encrypted link-signing key, so the first thing a team can
check is that ``sops -d secrets/signing-key.yaml`` works with the printed key.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import yaml

from grantctl.commands import Outcome
from grantctl.errors import GrantctlError
from grantctl.fileio import atomic_write_text
from grantctl.repo import CONFIG_FILE, SOPS_CONFIG_FILE

SIGNING_KEY_FILE = "secrets/signing-key.yaml"
# The CI workflows of a connections repo (plan on PRs, apply on merge, scheduled refresh + health);
# this project's own .github/workflows/grantctl-*.yml are the same files (a test keeps them equal).
WORKFLOWS = Path(__file__).resolve().parent.parent / "templates" / "workflows"
TOKEN_REGEX = "^(access_token|refresh_token|id_token)$"  # noqa: S105 - a field-name pattern


def sops_rules(recipient: str, *, prefix: str = "") -> list[dict[str, str]]:
    """Creation rules for one recipient; ``prefix`` narrows them to file names starting with it."""
    name = f"{prefix}[^/]*" if prefix else "[^/]*"
    return [
        {"path_regex": rf"(^|/)state/{name}\.yaml$", "encrypted_regex": TOKEN_REGEX, "age": recipient},
        {"path_regex": rf"(^|/)connections/{name}\.secrets\.yaml$", "age": recipient},
    ]


def config_text(public_url: str) -> str:
    return "# yaml-language-server: $schema=schemas/config.schema.json\n" + yaml.safe_dump(
        {
            "apiVersion": "grantctl/v1",
            "kind": "Config",
            "publicUrl": public_url,
            "state": {"backend": "files", "path": "state"},
            "links": {"ttl": "7d", "signingKeyFile": SIGNING_KEY_FILE},
            "refresh": {"warnAfterDays": 45},
        },
        sort_keys=False,
    )


def run_init(directory: Path, *, public_url: str, key_file: Path | None) -> Outcome:
    import pyrage

    from grantctl.sops.binary import encrypt_to_file

    root = directory.resolve()
    if (root / CONFIG_FILE).exists():
        raise GrantctlError(f"{root / CONFIG_FILE} already exists: this is a connections repo already")
    if (root / SOPS_CONFIG_FILE).exists():
        # Its rules would decide who can decrypt, not the key we are about to print.
        raise GrantctlError(
            f"{root / SOPS_CONFIG_FILE} already exists: move it away (or init another directory) so the new "
            "repo's files are encrypted to the key this command prints"
        )
    key_path = (key_file or default_key_path(root)).expanduser().resolve()
    if key_path.is_relative_to(root):
        raise GrantctlError(f"{key_path}: the private key must live outside the repo; pass --key-file elsewhere")
    if key_path.exists():
        raise GrantctlError(f"{key_path} already exists: pass --key-file to choose another path")

    _check_public_url(public_url)
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created: list[Path] = []
    try:
        _scaffold(root, recipient, public_url, created)
        _write_key(key_path, str(identity), recipient)
        created.append(key_path)
        encrypt_to_file(
            {"signing_key": secrets.token_urlsafe(32)},
            root / SIGNING_KEY_FILE,
            config=root / SOPS_CONFIG_FILE,
            env={**os.environ, "SOPS_AGE_KEY_FILE": str(key_path)},
        )
    except BaseException:
        _remove(created)  # nothing half-made is left behind
        raise
    return Outcome(
        "\n".join(
            [
                f"Initialised a connections repo in {root}",
                f"age recipient (public): {recipient}",
                f"age private key written to {key_path} (mode 0600; keep it out of git, back it up)",
                "",
                "Next:",
                f"  export SOPS_AGE_KEY_FILE={key_path}",
                "  grantctl new NAME --provider xero --org 'Client Ltd' --owner you@agency.example ...",
                "  add the private key as the repository secret SOPS_AGE_KEY for .github/workflows/",
            ]
        )
    )


def _check_public_url(public_url: str) -> None:
    from pydantic import ValidationError

    from grantctl.models import Config

    try:
        Config.model_validate({"apiVersion": "grantctl/v1", "kind": "Config", "publicUrl": public_url})
    except ValidationError:
        raise GrantctlError(
            f"--public-url {public_url!r} is not an http(s) URL like https://connect.agency.example"
        ) from None


def _scaffold(root: Path, recipient: str, public_url: str, created: list[Path]) -> None:
    def make(path: Path, text: str | None = None) -> None:
        if path.exists():
            return
        if text is None:
            path.mkdir(parents=True)
        else:
            atomic_write_text(path, text)
        created.append(path)

    make(root)
    make(root / CONFIG_FILE, config_text(public_url))
    rules = [*sops_rules(recipient), {"path_regex": r"(^|/)secrets/[^/]*\.yaml$", "age": recipient}]
    make(root / SOPS_CONFIG_FILE, yaml.safe_dump({"creation_rules": rules}, sort_keys=False))
    for sub in ("connections", "state", "secrets"):
        make(root / sub)
    make(root / ".gitignore", "state/.locks/\n*.agekey\n")
    workflows = root / ".github" / "workflows"
    make(workflows)
    for template in sorted(WORKFLOWS.glob("*.yml")):
        make(workflows / template.name, template.read_text(encoding="utf-8"))


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def default_key_path(root: Path) -> Path:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "grantctl" / f"{root.name}.agekey"


def _write_key(path: Path, identity: str, recipient: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    # O_EXCL + 0600 at creation: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
