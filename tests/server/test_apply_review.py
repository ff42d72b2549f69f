"""`grantctl apply --allow-destructive` against the emulator: what was done is never hidden by what failed
next, and a links setting that cannot work stops apply before anything is revoked."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import yaml
from server_helpers import ACME, NAME, SCOPES, Live
from test_apply_e2e import connect, pin

from grantctl.commands.apply import run_apply
from grantctl.errors import EXIT_ERROR, GrantctlError, StateError
from grantctl.repo import Repo
from grantctl.state.base import DEFAULT_LOCK_TIMEOUT, StateStore
from grantctl.state.model import Grant, Tokens

FEWER = [scope for scope in SCOPES if scope != "accounting.invoices"]


class LinkHistoryUnwritable(StateStore):
    """The live store, except that recording a new link fails (a full disk, a lock held too long...)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def names(self) -> list[str]:
        return self.inner.names()

    def read_grant(self, name: str) -> Grant | None:
        return self.inner.read_grant(name)

    def read_tokens(self, name: str) -> Tokens | None:
        return self.inner.read_tokens(name)

    def lock(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> AbstractContextManager[None]:
        return self.inner.lock(name, timeout)

    def write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
        before = self.inner.read_grant(name)
        if before is not None and len(grant.links) > len(before.links):
            raise StateError(f"{name}: could not write the state file (disk full); the previous version is unchanged")
        self.inner.write(name, grant, tokens)

    def delete(self, name: str) -> None:
        self.inner.delete(name)


def test_a_revoke_that_happened_is_reported_even_when_the_new_link_fails(live: Live, tmp_path: Path) -> None:
    pin(live, ACME)
    connect(live, tmp_path)
    pin(live, ACME, scopes=FEWER)

    outcome = run_apply(live.repo, allow_destructive=True, now=live.clock(), store=LinkHistoryUnwritable(live.store))

    assert outcome.exit_code == EXIT_ERROR, outcome.output
    assert live.emulator_connections() == []  # the revoke really happened...
    assert "revoked the grant" in outcome.output  # ...so the report says so
    assert "disk full" in outcome.output  # and what failed after it
    assert "1 destructive action(s) done" in outcome.output


def test_a_links_ttl_that_cannot_work_stops_before_anything_is_revoked(live: Live, tmp_path: Path) -> None:
    pin(live, ACME)
    connect(live, tmp_path)
    pin(live, ACME, scopes=FEWER)
    config_path = live.repo.root / "grantctl.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["links"] = {"ttl": "0d"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    state_before = (live.repo.state_dir / f"{NAME}.yaml").read_text()
    links_out = tmp_path / "links.json"

    with pytest.raises(GrantctlError, match=r"links\.ttl") as caught:
        run_apply(
            Repo.load(live.repo.root), allow_destructive=True, links_out=links_out, now=live.clock(), store=live.store
        )

    assert "grantctl.yaml" in str(caught.value)
    assert not links_out.exists()
    assert [c["tenantId"] for c in live.emulator_connections()] == [ACME]  # nothing revoked
    assert (live.repo.state_dir / f"{NAME}.yaml").read_text() == state_before
