"""``grantctl verify``: is every state file exactly what grantctl (or sops) last wrote?

The SOPS MAC of a state file covers its plaintext grant fields as well as its tokens, so a hand
edit of ``granted_scopes`` is caught here, by name, wherever the age key is present. Without the
key a file cannot be checked, and verify says so instead of passing it.

    $ SOPS_AGE_KEY_FILE=~/.config/grantctl/team.agekey grantctl verify
    ok            acme-ltd
    TAMPERED      beta-co        state/beta-co.yaml: MAC mismatch: ...
    2 state files: 1 ok, 1 tampered
"""

from __future__ import annotations

from grantctl.commands import Outcome
from grantctl.errors import EXIT_ERROR, EXIT_OK
from grantctl.repo import Repo
from grantctl.state.files import FilesStore, Integrity, IntegrityStatus
from grantctl.state.registry import open_store

_LABELS: dict[IntegrityStatus, str] = {
    "ok": "ok",
    "tampered": "TAMPERED",
    "unverifiable": "unverifiable",
    "invalid": "INVALID",
}
_ORDER: tuple[IntegrityStatus, ...] = ("ok", "tampered", "invalid", "unverifiable")


def run_verify(repo: Repo) -> Outcome:
    """Check every state file; exit 0 when all are ok, 1 when any is tampered, invalid or unchecked."""
    checks = _integrity(repo)
    state_dir = repo.relative(repo.state_dir)
    if not checks:
        return Outcome(f"No state files in {state_dir}/: nothing to verify.\n", EXIT_OK)
    width = max(len(name) for name in checks) + 2
    lines = [_row(name, check, width) for name, check in checks.items()]
    lines.append(_summary(checks))
    lines += _advice(checks, state_dir.as_posix())
    failed = any(not check.ok for check in checks.values())
    return Outcome("\n".join(lines) + "\n", EXIT_ERROR if failed else EXIT_OK)


def _integrity(repo: Repo) -> dict[str, Integrity]:
    store = open_store(repo)
    if isinstance(store, FilesStore):
        return store.integrity()
    return {  # pragma: no cover - other backends only say what is wrong, not how
        name: Integrity("ok") if problem is None else Integrity("invalid", problem)
        for name, problem in sorted(store.verify().items())
    }


def _row(name: str, check: Integrity, width: int) -> str:
    row = f"{_LABELS[check.status]:<14}{name:<{width}}"
    return f"{row}{check.detail}".rstrip() if not check.ok else row.rstrip()


def _summary(checks: dict[str, Integrity]) -> str:
    counts = {status: sum(1 for c in checks.values() if c.status == status) for status in _ORDER}
    parts = [f"{counts[status]} {status}" for status in _ORDER if counts[status] or status == "ok"]
    noun = "state file" if len(checks) == 1 else "state files"
    return f"\n{len(checks)} {noun}: {', '.join(parts)}"


def _advice(checks: dict[str, Integrity], state_dir: str) -> list[str]:
    """What to do next, once per kind of problem."""
    by_status = {status: [n for n, c in checks.items() if c.status == status] for status in _ORDER}
    advice = []
    if tampered := by_status["tampered"]:
        example = f"{state_dir}/{tampered[0]}.yaml"
        advice.append(
            f"TAMPERED: {', '.join(tampered)}. These files were changed without the key, so their grants "
            f"cannot be trusted. See what changed with `git log -p -- {example}`, restore the last good "
            f"version with `git checkout <commit> -- {example}`, and run `grantctl verify` again."
        )
    if invalid := by_status["invalid"]:
        advice.append(
            f"INVALID: {', '.join(invalid)}. These are not readable state documents; restore them from "
            "git history (they are written by grantctl only)."
        )
    if unverifiable := by_status["unverifiable"]:
        advice.append(
            f"Not checked: {', '.join(unverifiable)}. Without an age key that can decrypt a file its MAC "
            "cannot be verified: set SOPS_AGE_KEY_FILE (or SOPS_AGE_KEY) to the team's key and run "
            "`grantctl verify` again."
        )
    return ["", *advice] if advice else []
