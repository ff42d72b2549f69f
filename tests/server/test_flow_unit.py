"""The consent flow against a scripted provider (httpx.MockTransport): the branches the emulator cannot reach."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from server_helpers import ACME, CLIENT_ID, CLIENT_SECRET, HOLDINGS, NAME, SIGNING_KEY, AgeKey, write_repo

from grantctl.links import SigningKey
from grantctl.manifest import load_connection_fast
from grantctl.repo import Repo
from grantctl.server import ConsentFlow, FlowResult, Redirect, cookie_name
from grantctl.state.base import MemoryStore

KEY = SigningKey(SIGNING_KEY.encode(), "test")
API = "http://xero.test"
Handler = Callable[[httpx.Request], httpx.Response]


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def fake_xero(*, tenants: list[tuple[str, str]], delete_status: int = 204, seen: list[httpx.Request]) -> Handler:
    """Token endpoint and /connections for one consent that connected ``tenants`` (id, name)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/connect/token":
            access = jwt({"scope": ["offline_access", "accounting.invoices"], "authentication_event_id": "ev-1"})
            return httpx.Response(200, json={"access_token": access, "refresh_token": "R-1", "expires_in": 1800})
        if path == "/connections" and request.method == "GET":
            return httpx.Response(
                200,
                json=[
                    {
                        "id": f"conn-{tenant_id}",
                        "tenantId": tenant_id,
                        "tenantName": name,
                        "tenantType": "ORGANISATION",
                        "authEventId": "ev-1",
                        "updatedDateUtc": "2026-12-01T09:30:00",
                    }
                    for tenant_id, name in tenants
                ],
            )
        if path.startswith("/connections/") and request.method == "DELETE":
            return httpx.Response(delete_status)
        return httpx.Response(404)

    return handle


def make_repo(tmp_path: Path, age_key: AgeKey, *, pkce: bool = False) -> Repo:
    repo = write_repo(tmp_path / "repo", public_url="https://connect.agency.example", emulator_url=API, age_key=age_key)
    if pkce:
        config_path = repo.root / "grantctl.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["providers"]["xero"]["pkce"] = True
        config_path.write_text(yaml.safe_dump(config))
        repo = Repo.load(repo.root)
    return repo


def run_flow(
    repo: Repo, handler: Handler, *, store: MemoryStore, code: str = "the-code"
) -> tuple[Redirect, FlowResult]:
    async def scenario() -> tuple[Redirect, FlowResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            flow = ConsentFlow(
                repo,
                key=KEY,
                http=http,
                store=store,
                redirect_uri=repo.config.redirect_uri,
                clock=lambda: datetime.now(UTC),
                decrypt=lambda _path: {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            )
            connection = load_connection_fast(repo.manifest_path(NAME))
            redirect = await flow.begin(connection)
            state = parse_qs(urlsplit(redirect.authorize_url).query)["state"][0]
            cookies = {cookie_name(NAME): redirect.binding_secret or ""}
            return redirect, await flow.finish({"state": state, "code": code}, cookies)

    return asyncio.run(scenario())


def test_failed_disconnect_of_an_extra_organisation_stores_nothing(tmp_path: Path, age_key: AgeKey) -> None:
    store = MemoryStore()
    seen: list[httpx.Request] = []
    handler = fake_xero(tenants=[(ACME, "Acme Ltd"), (HOLDINGS, "Acme Holdings")], delete_status=503, seen=seen)

    _, result = run_flow(make_repo(tmp_path, age_key), handler, store=store)

    assert result.kind == "provider-error"
    assert result.not_released == ("Acme Holdings",)
    assert store.read_grant(NAME) is None
    assert [r.method for r in seen if r.url.path.startswith("/connections/")] == ["DELETE"]


def test_successful_disconnect_then_store(tmp_path: Path, age_key: AgeKey) -> None:
    store = MemoryStore()
    seen: list[httpx.Request] = []
    handler = fake_xero(tenants=[(ACME, "Acme Ltd"), (HOLDINGS, "Acme Holdings")], seen=seen)

    _, result = run_flow(make_repo(tmp_path, age_key), handler, store=store)

    assert result.kind == "connected"
    assert result.released == ("Acme Holdings",)
    deleted = [r.url.path for r in seen if r.method == "DELETE"]
    assert deleted == [f"/connections/conn-{HOLDINGS}"]
    grant = store.read_grant(NAME)
    assert grant is not None
    assert grant.granted_scopes == ["accounting.invoices", "offline_access"]
    tokens = store.read_tokens(NAME)
    assert tokens is not None
    assert tokens.refresh_token == "R-1"


def test_token_request_authenticates_and_uses_the_redirect_uri(tmp_path: Path, age_key: AgeKey) -> None:
    seen: list[httpx.Request] = []
    run_flow(make_repo(tmp_path, age_key), fake_xero(tenants=[(ACME, "Acme Ltd")], seen=seen), store=MemoryStore())

    token_request = next(r for r in seen if r.url.path == "/connect/token")
    form = parse_qs(token_request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["the-code"]
    assert form["redirect_uri"] == ["https://connect.agency.example/callback"]
    assert "code_verifier" not in form
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"


def test_pkce_when_configured(tmp_path: Path, age_key: AgeKey) -> None:
    seen: list[httpx.Request] = []
    repo = make_repo(tmp_path, age_key, pkce=True)
    redirect, result = run_flow(repo, fake_xero(tenants=[(ACME, "Acme Ltd")], seen=seen), store=MemoryStore())

    assert result.kind == "connected"
    query = parse_qs(urlsplit(redirect.authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    form = parse_qs(next(r for r in seen if r.url.path == "/connect/token").content.decode())
    verifier = form["code_verifier"][0]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == [challenge]


def pipedrive_repo(tmp_path: Path, age_key: AgeKey, organisation: str) -> Repo:
    repo = make_repo(tmp_path, age_key)
    config_path = repo.root / "grantctl.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["providers"] = {
        "pipedrive": {"tokenUrl": f"{API}/oauth/token", "revocationUrl": f"{API}/oauth/revoke", "apiUrl": API}
    }
    config_path.write_text(yaml.safe_dump(config))
    manifest_path = repo.manifest_path(NAME)
    manifest = yaml.safe_load(manifest_path.read_text())
    manifest["spec"].update(provider="pipedrive", scopes=["base", "deals:read"])
    manifest["spec"]["organization"]["name"] = organisation
    manifest["spec"]["app"].pop("createdOn")
    manifest_path.write_text(yaml.safe_dump(manifest))
    return Repo.load(repo.root)


def fake_pipedrive(seen: list[httpx.Request]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth/token":
            body = {"access_token": "A-1", "refresh_token": "R-1", "scope": "base,deals:read", "expires_in": 3600}
            return httpx.Response(200, json={**body, "api_domain": API})
        if request.url.path == "/api/v1/users/me":
            return httpx.Response(200, json={"data": {"company_id": 42, "company_name": "Other Co", "id": 7}})
        if request.url.path == "/oauth/revoke":
            return httpx.Response(200)
        return httpx.Response(404)

    return handle


def test_provider_without_disconnect_revokes_a_wrong_grant(tmp_path: Path, age_key: AgeKey) -> None:
    seen: list[httpx.Request] = []
    store = MemoryStore()
    redirect, result = run_flow(pipedrive_repo(tmp_path, age_key, "Acme Ltd"), fake_pipedrive(seen), store=store)

    assert "scope=" not in redirect.authorize_url  # Pipedrive fixes scopes at app registration
    assert result.kind == "wrong-organization"
    assert result.released == ("Other Co",)
    assert [r.url.path for r in seen if r.url.path == "/oauth/revoke"] == ["/oauth/revoke"]
    assert store.read_grant(NAME) is None


def test_provider_without_disconnect_keeps_the_right_company(tmp_path: Path, age_key: AgeKey) -> None:
    seen: list[httpx.Request] = []
    store = MemoryStore()
    _, result = run_flow(pipedrive_repo(tmp_path, age_key, "other co"), fake_pipedrive(seen), store=store)

    assert result.kind == "connected"
    assert not [r for r in seen if r.url.path == "/oauth/revoke"]
    grant = store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == "42"


@pytest.mark.parametrize("status", [400, 401, 500])
def test_token_endpoint_refusal(tmp_path: Path, age_key: AgeKey, status: int) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "invalid_grant"})

    store = MemoryStore()
    _, result = run_flow(make_repo(tmp_path, age_key), handle, store=store)
    assert result.kind == "provider-error"
    assert result.status == 502
    assert "the-code" not in result.detail
    assert store.read_grant(NAME) is None
