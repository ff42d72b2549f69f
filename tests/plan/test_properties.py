"""Properties of the planner over generated manifests and grants."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grantctl.catalogue import catalogue_for, missing_scopes
from grantctl.plan import build_plan
from grantctl.plan_render import render_json, render_markdown, render_text

# `make` is a stateless session fixture; the suite's autouse home fixture is harmless to share.
FIXTURES_OK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PROVIDER_SCOPES = {provider: sorted(catalogue_for(provider).scopes) for provider in ("xero", "hubspot", "pipedrive")}
HEALTH = st.none() | st.sampled_from(["healthy", "expiring", "revoked", "reauthorize", "unreachable", "scope-drift"])


@st.composite
def covering_grants(draw: Any) -> tuple[str, list[str], list[str]]:
    """(provider, desired, granted) where the grant covers the desired set and holds nothing beyond it."""
    provider = draw(st.sampled_from(sorted(PROVIDER_SCOPES)))
    catalogue = catalogue_for(provider)
    desired = draw(st.lists(st.sampled_from(PROVIDER_SCOPES[provider]), min_size=1, max_size=8, unique=True))
    implied = sorted(catalogue.expand(desired))
    extra = draw(st.lists(st.sampled_from(implied), max_size=4, unique=True))
    dropped = draw(st.lists(st.sampled_from(desired), max_size=2, unique=True))
    granted = sorted((set(desired) - set(dropped)) | set(extra))
    assume(not missing_scopes(catalogue, granted, desired))
    return provider, desired, granted


@FIXTURES_OK
@given(case=covering_grants(), idle=st.integers(0, 44), health=st.sampled_from([None, "healthy", "expiring"]))
def test_covered_grant_of_the_pinned_tenant_needs_nothing(make: Any, case: Any, idle: int, health: Any) -> None:
    provider, desired, granted = case
    last_health = {"status": health, "at": "2027-01-10T00:00:00Z"} if health else None
    connection = make.connection(provider=provider, scopes=desired)
    the_grant = make.grant(provider=provider, scopes=granted, idle_days=idle, last_health=last_health)

    plan = build_plan([connection], {"acme-ltd": the_grant}, now=make.NOW)

    assert plan.actions == ()
    assert plan.unchanged == ("acme-ltd",)


@FIXTURES_OK
@given(
    provider=st.sampled_from(sorted(PROVIDER_SCOPES)),
    data=st.data(),
    idle=st.integers(0, 200),
    health=HEALTH,
    pinned=st.booleans(),
    right_tenant=st.booleans(),
    marked=st.booleans(),
)
def test_an_exactly_matching_grant_is_never_destroyed(
    make: Any, provider: str, data: Any, idle: int, health: Any, pinned: bool, right_tenant: bool, marked: bool
) -> None:
    scopes = data.draw(st.lists(st.sampled_from(PROVIDER_SCOPES[provider]), min_size=1, max_size=8, unique=True))
    connection = make.connection(provider=provider, scopes=scopes, tenant_id=make.TENANT_ID if pinned else None)
    the_grant = make.grant(
        provider=provider,
        scopes=scopes,
        idle_days=idle,
        tenant_id=make.TENANT_ID if right_tenant else make.OTHER_TENANT_ID,
        tenant_name="Acme Ltd" if right_tenant else "Other Co",
        last_health={"status": health, "at": "2027-01-10T00:00:00Z"} if health else None,
        reauthorize={"reason": "invalid_grant", "at": "2027-01-10T00:00:00Z"} if marked else None,
    )

    plan = build_plan([connection], {"acme-ltd": the_grant}, now=make.NOW)

    # Same scopes: nothing is ever revoked. The only destructive action possible is disconnecting a
    # tenant that is not the manifest's organisation (then the grant does not match exactly), unless a
    # dead refresh token makes it a plain reauthorize (nothing can be disconnected without a token).
    tenant = the_grant.tenant
    assert tenant is not None
    right = connection.spec.organization.accepts(tenant.id, tenant.name, provider=provider)
    destructive = [action.kind for action in plan.actions if action.destructive]
    assert destructive == [] if right else destructive in ([], ["wrong-organization"])
    if not right and "reauthorize" not in {action.kind for action in plan.actions}:
        assert destructive == ["wrong-organization"]
    assert len([a for a in plan.actions if a.scopes]) <= 1  # at most one link per connection


@FIXTURES_OK
@given(seed=st.integers(0, 2**32 - 1))
def test_input_order_never_changes_the_output(make: Any, seed: int) -> None:
    connections = [
        make.connection("a-new"),
        make.connection("b-extend"),
        make.connection("c-reduce", tenant_id=None),
        make.connection("d-stale"),
        make.connection("e-same"),
    ]
    grants = {
        "b-extend": make.grant("b-extend", scopes=["openid"]),
        "c-reduce": make.grant("c-reduce", scopes=[*make.DESIRED, "files"]),
        "d-stale": make.grant("d-stale", idle_days=50),
        "e-same": make.grant("e-same"),
        "z-orphan": make.grant("z-orphan"),
    }
    expected = build_plan(connections, grants, now=make.NOW)
    shuffled = random.Random(seed)
    connections_shuffled = shuffled.sample(connections, len(connections))
    grants_shuffled = dict(shuffled.sample(sorted(grants.items()), len(grants)))

    plan = build_plan(connections_shuffled, grants_shuffled, now=make.NOW)

    assert plan == expected
    assert render_text(plan) == render_text(expected)
    assert render_json(plan) == render_json(expected)
    assert render_markdown(plan) == render_markdown(expected)
