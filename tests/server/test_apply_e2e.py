"""`grantctl apply` through the real path: links out, consent at the emulator, callback, plan clean again.

This is issue 4's "done when": apply emits a link per gap; following it ends on the success page,
writes the state, and the next `plan --detailed-exitcode` exits 0; destructive actions, once approved,
revoke or disconnect at the provider.
"""

from __future__ import annotations

import json
from pathlib import Path

from server_helpers import ACME, HOLDINGS, NAME, SCOPES, Live, manifest_text, page_text

from grantctl.commands.apply import run_apply
from grantctl.commands.plan import run_plan
from grantctl.errors import EXIT_CHANGES, EXIT_OK


def pin(live: Live, tenant_id: str, organisation: str = "Acme Ltd", scopes: list[str] = SCOPES) -> None:
    live.repo.manifest_path(NAME).write_text(
        manifest_text(scopes=scopes, organisation=organisation, tenant_id=tenant_id)
    )


def apply(live: Live, tmp_path: Path, **options: object) -> tuple[int, str, list[dict[str, object]]]:
    links_out = tmp_path / "links.json"
    outcome = run_apply(live.repo, links_out=links_out, now=live.clock(), store=live.store, **options)  # type: ignore[arg-type]
    links = json.loads(links_out.read_text())["links"] if links_out.exists() else []
    links_out.unlink(missing_ok=True)
    return outcome.exit_code, outcome.output, links


def plan_exit(live: Live) -> int:
    return run_plan(live.repo, detailed_exitcode=True, now=live.clock(), store=live.store).exit_code


def connect(live: Live, tmp_path: Path) -> None:
    code, output, links = apply(live, tmp_path)
    assert code == EXIT_OK, output
    assert [link["action"] for link in links] == ["connect"]
    page = live.consent(str(links[0]["url"]), [ACME])
    assert page.status_code == 200, page.text
    assert "Connected Acme Ltd" in page_text(page.text)


def test_apply_link_consent_then_plan_is_clean(live: Live, tmp_path: Path) -> None:
    pin(live, ACME)
    assert plan_exit(live) == EXIT_CHANGES
    connect(live, tmp_path)
    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == ACME
    assert [link.action for link in grant.links] == ["connect"]  # the link history survived the consent
    assert plan_exit(live) == EXIT_OK


def test_reduce_needs_approval_then_revokes_and_relinks(live: Live, tmp_path: Path) -> None:
    pin(live, ACME)
    connect(live, tmp_path)
    fewer = [scope for scope in SCOPES if scope != "accounting.invoices"]
    pin(live, ACME, scopes=fewer)

    code, output, links = apply(live, tmp_path)
    assert code == EXIT_CHANGES, output
    assert "-/+ reduce  acme-ltd: held" in output
    assert links == []
    assert [c["tenantId"] for c in live.emulator_connections()] == [ACME]

    code, output, links = apply(live, tmp_path, allow_destructive=True)
    assert code == EXIT_OK, output
    assert "revoked the grant" in output
    assert live.emulator_connections() == []
    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is None
    assert [link["action"] for link in links] == ["reduce"]

    page = live.consent(str(links[0]["url"]), [ACME])
    assert "Connected Acme Ltd" in page_text(page.text)
    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert "accounting.invoices" not in grant.granted_scopes
    assert plan_exit(live) == EXIT_OK


def test_wrong_organisation_is_disconnected_once_approved(live: Live, tmp_path: Path) -> None:
    pin(live, ACME)
    connect(live, tmp_path)
    pin(live, HOLDINGS, organisation="Acme Holdings")  # the client's other company was the right one

    code, output, links = apply(live, tmp_path)
    assert code == EXIT_CHANGES, output
    assert "! wrong-organization  acme-ltd: held" in output
    assert links == []  # a consent now would overwrite the tokens that can disconnect Acme Ltd
    assert [c["tenantId"] for c in live.emulator_connections()] == [ACME]

    code, output, links = apply(live, tmp_path, allow_destructive=True)
    assert code == EXIT_OK, output
    assert f"disconnected tenant {ACME}" in output
    assert live.emulator_connections() == []
    assert [link["action"] for link in links] == ["wrong-organization"]

    page = live.consent(str(links[0]["url"]), [HOLDINGS])
    assert "Connected Acme Holdings" in page_text(page.text)
    assert plan_exit(live) == EXIT_OK
