"""The planner: what each connection needs so that what a client granted matches what its manifest wants.

:func:`build_plan` is a pure function of (manifests, grants, now, settings): no files, no network, no
keys. Per connection it emits the actions that apply, Terraform style:

====================  ======  =============================================================  ===========
kind                  symbol  when                                                           destructive
====================  ======  =============================================================  ===========
connect               ``+``   a manifest and no grant (no state, or a state with no tenant)  no
reauthorize           ``!``   ``invalid_grant`` seen, refresh token expired, health revoked  no
wrong-organization    ``!``   the granted tenant is not the manifest's organisation          no
reduce                ``-/+`` the grant holds scopes no desired scope needs                  yes
extend                ``~``   desired scopes the grant does not cover                        no
refresh               ``~``   the refresh token is idle past the warning age                 no
pin                   ``~``   the grant has a tenant id the manifest does not pin            no
orphan                ``-``   a grant with no manifest                                       yes
====================  ======  =============================================================  ===========

Every action that ends in an authorization link (reauthorize, wrong-organization, reduce, extend) asks
for the whole desired set, because a consent both adds scopes and, for Xero, never removes them. A
connection therefore gets at most ONE link action: the first of those four kinds that applies, with the
findings of the others in its evidence (wrong organisation AND missing scopes is one wrong-organization
action whose evidence lists the missing scopes). ``refresh`` and ``pin`` are added beside it when they
still make sense (no refresh for a token that is dead or about to be revoked; no pin of a wrong tenant).

Example::

    >>> plan = build_plan([connection], {}, now=datetime.now(UTC))
    >>> [(a.symbol, a.kind, a.connection) for a in plan.actions]
    [('+', 'connect', 'acme-ltd')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from grantctl.catalogue import Catalogue, catalogue_for, excess_scopes, missing_scopes, why_not_covered

if TYPE_CHECKING:
    from grantctl.models import Config, Connection
    from grantctl.state.model import Grant

ActionKind = Literal["connect", "reauthorize", "wrong-organization", "reduce", "extend", "refresh", "pin", "orphan"]

KIND_ORDER: tuple[ActionKind, ...] = (
    "connect",
    "reauthorize",
    "wrong-organization",
    "reduce",
    "extend",
    "refresh",
    "pin",
    "orphan",
)
"""Kinds in the order summaries list them and actions of one connection are sorted in."""

SYMBOLS: Mapping[ActionKind, str] = {
    "connect": "+",
    "reauthorize": "!",
    "wrong-organization": "!",
    "reduce": "-/+",
    "extend": "~",
    "refresh": "~",
    "pin": "~",
    "orphan": "-",
}
DESTRUCTIVE_KINDS: frozenset[ActionKind] = frozenset({"reduce", "orphan", "wrong-organization"})
LINK_KINDS: frozenset[ActionKind] = frozenset({"connect", "reauthorize", "wrong-organization", "reduce", "extend"})
"""Kinds whose apply issues an authorization link (for the desired scopes)."""

# Health states after which only a new consent helps (see grantctl.state.model.HealthStatus).
REAUTHORIZE_HEALTH = frozenset({"revoked", "reauthorize"})


@dataclass(frozen=True)
class PlanSettings:
    """The knobs of the planner; :meth:`from_config` reads them from ``grantctl.yaml``."""

    warn_after_days: int = 45
    expire_after_days: int = 60

    @classmethod
    def from_config(cls, config: Config) -> PlanSettings:
        """Settings from the repo config's ``refresh`` section."""
        return cls(
            warn_after_days=config.refresh.warn_after_days,
            expire_after_days=config.refresh.expire_after_days,
        )


@dataclass(frozen=True)
class Evidence:
    """One ``label: value`` line of an action's evidence; a tuple value is a list (of scopes)."""

    label: str
    value: str | tuple[str, ...]

    def __str__(self) -> str:
        value = f"[{', '.join(self.value)}]" if isinstance(self.value, tuple) else self.value
        return f"{self.label}: {value}"


@dataclass(frozen=True)
class Action:
    """One thing ``apply`` will do for one connection, and why.

    ``scopes`` is the set a new authorization link asks for (the desired set, sorted), empty when
    the action issues no link. ``tenant_id`` is the tenant the action is about: the one to
    disconnect (wrong-organization), to pin (pin) or to revoke (orphan).
    """

    connection: str
    kind: ActionKind
    provider: str
    organization: str | None
    reason: str
    evidence: tuple[Evidence, ...]
    apply: str
    scopes: tuple[str, ...] = ()
    tenant_id: str | None = None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.kind]

    @property
    def destructive(self) -> bool:
        """True when apply removes access the client gave (needs ``--allow-destructive``)."""
        return self.kind in DESTRUCTIVE_KINDS

    @property
    def sort_key(self) -> tuple[str, int]:
        return self.connection, KIND_ORDER.index(self.kind)


@dataclass(frozen=True)
class Plan:
    """All actions, sorted by connection then kind, and the connections that need none."""

    actions: tuple[Action, ...]
    unchanged: tuple[str, ...]
    counts: Mapping[ActionKind, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tally = Counter(action.kind for action in self.actions)
        object.__setattr__(self, "counts", {kind: tally[kind] for kind in KIND_ORDER})

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    @property
    def destructive_count(self) -> int:
        return sum(1 for action in self.actions if action.destructive)


def build_plan(
    connections: Iterable[Connection],
    grants: Mapping[str, Grant],
    *,
    now: datetime,
    settings: PlanSettings | None = None,
) -> Plan:
    """Compare every manifest with its grant (and every grant with its manifest) and plan the actions.

    ``grants`` maps connection names to the plaintext grant of their state document (a missing name
    means no state). ``now`` must carry a timezone; token ages are counted in whole days so the same
    inputs and the same ``now`` always give the same plan.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a timezone (use datetime.now(UTC))")
    settings = settings or PlanSettings()
    actions: list[Action] = []
    unchanged: list[str] = []
    desired_names: set[str] = set()
    for connection in connections:
        desired_names.add(connection.name)
        found = plan_connection(connection, grants.get(connection.name), now=now, settings=settings)
        if found:
            actions.extend(found)
        else:
            unchanged.append(connection.name)
    for name in sorted(set(grants) - desired_names):
        actions.append(plan_orphan(name, grants[name], now=now, settings=settings))
    actions.sort(key=lambda action: action.sort_key)
    return Plan(actions=tuple(actions), unchanged=tuple(sorted(unchanged)))


def plan_connection(
    connection: Connection, grant: Grant | None, *, now: datetime, settings: PlanSettings
) -> list[Action]:
    """The actions one manifest needs given its grant (None when it has no state); [] when none."""
    if grant is None or grant.tenant is None:
        return [_connect(connection, grant)]
    if grant.provider != connection.spec.provider:
        return [_switch_provider(connection, grant)]
    findings = _Findings.of(connection, grant, now=now, settings=settings)
    actions = []
    link_kind = findings.link_kind()
    if link_kind is not None:
        actions.append(_link_action(link_kind, connection, grant, findings))
    if findings.refresh_due and link_kind in (None, "extend"):
        # A token that is dead (reauthorize) or about to be revoked or disconnected needs no refresh;
        # one waiting for the client to click an extend link does, or it expires meanwhile.
        actions.append(_refresh(connection, findings))
    if connection.spec.organization.tenant_id is None and findings.wrong_tenant is None:
        actions.append(_pin(connection, grant))
    return actions


def plan_orphan(name: str, grant: Grant, *, now: datetime, settings: PlanSettings) -> Action:
    """A grant whose manifest is gone: revoke it and delete its state (destructive)."""
    tenant = grant.tenant
    evidence = [Evidence("manifest", "none (the manifest was removed)")]
    if tenant is None:
        return Action(
            connection=name,
            kind="orphan",
            provider=grant.provider,
            organization=None,
            reason="The state has no manifest and the client never completed consent.",
            evidence=(*evidence, Evidence("tenant", "none")),
            apply="delete the state document; there is no grant to revoke",
        )
    evidence += [
        Evidence("tenant", _tenant_text(tenant.name, tenant.id)),
        Evidence("granted", _sorted(grant.granted_scopes)),
    ]
    dead = _reauthorize_causes(grant, _idle_days(grant, now), settings)
    evidence += [Evidence("token", cause) for cause in dead]
    apply = f"revoke the grant at {_display(grant.provider)} (removes the app's access to {tenant.name}), "
    apply += "then delete the state document"
    if dead:
        apply += " (the refresh token is no longer usable, so the revoke may find nothing to remove)"
    return Action(
        connection=name,
        kind="orphan",
        provider=grant.provider,
        organization=tenant.name,
        reason="A client granted access but no manifest asks for this connection any more.",
        evidence=tuple(evidence),
        apply=apply,
        tenant_id=tenant.id,
    )


# --- findings on a connected grant -----------------------------------------------------------------


@dataclass(frozen=True)
class _Findings:
    """Everything the planner noticed about one connected grant, before choosing actions."""

    catalogue: Catalogue
    granted: tuple[str, ...]
    desired: tuple[str, ...]
    missing: tuple[str, ...]
    excess: tuple[str, ...]
    not_covered: tuple[str, ...]  # one sentence per missing scope that needs explaining
    wrong_tenant: str | None  # what was expected, when the tenant is the wrong one
    reauthorize: tuple[str, ...]
    idle_days: int | None
    refresh_due: bool
    settings: PlanSettings

    @classmethod
    def of(cls, connection: Connection, grant: Grant, *, now: datetime, settings: PlanSettings) -> _Findings:
        catalogue = catalogue_for(connection.spec.provider)
        granted, desired = grant.granted_scopes, connection.spec.scopes
        missing = missing_scopes(catalogue, granted, desired)
        idle = _idle_days(grant, now)
        causes = _reauthorize_causes(grant, idle, settings)
        return cls(
            catalogue=catalogue,
            granted=_sorted(granted),
            desired=_sorted(desired),
            missing=tuple(missing),
            excess=tuple(excess_scopes(catalogue, granted, desired)),
            not_covered=_explanations(catalogue, granted, missing),
            wrong_tenant=_wrong_tenant(connection, grant),
            reauthorize=causes,
            idle_days=idle,
            refresh_due=not causes and idle is not None and idle >= settings.warn_after_days,
            settings=settings,
        )

    def link_kind(self) -> ActionKind | None:
        """The one link action this grant needs, by precedence, or None."""
        if self.reauthorize:
            return "reauthorize"
        if self.wrong_tenant is not None:
            return "wrong-organization"
        if self.excess:
            return "reduce"
        if self.missing:
            return "extend"
        return None

    @property
    def broad_vs_granular(self) -> bool:
        """True when a broad scope is granted and a granular one is missing (new consent needed)."""
        broad_granted = any(getattr(self.catalogue.get(scope), "broad", False) for scope in self.granted)
        return broad_granted and any(self.catalogue.is_granular(scope) for scope in self.missing)

    def scope_evidence(self) -> list[Evidence]:
        lines = [Evidence("granted", self.granted), Evidence("desired", self.desired)]
        if self.missing:
            lines.append(Evidence("missing", self.missing))
        if self.excess:
            lines.append(Evidence("excess", self.excess))
        lines += [Evidence("why", sentence) for sentence in self.not_covered]
        return lines

    def token_age(self) -> str:
        return (
            f"{self.idle_days} days since the refresh token was issued "
            f"(warn after {self.settings.warn_after_days}, expires after {self.settings.expire_after_days})"
        )


def _idle_days(grant: Grant, now: datetime) -> int | None:
    """Whole days since the current refresh token was issued (the provider's idle clock)."""
    issued = grant.refresh_token_issued_at or grant.refreshed_at or grant.authorized_at
    if issued is None:
        return None
    return max((now - issued).days, 0)


def _reauthorize_causes(grant: Grant, idle_days: int | None, settings: PlanSettings) -> tuple[str, ...]:
    causes = []
    if grant.reauthorize is not None:
        causes.append(f"marked for reauthorization on {_day(grant.reauthorize.at)}: {grant.reauthorize.reason}")
    if idle_days is not None and idle_days >= settings.expire_after_days:
        causes.append(f"refresh token unused for {idle_days} days; it expires after {settings.expire_after_days}")
    health = grant.last_health
    if health is not None and health.status in REAUTHORIZE_HEALTH:
        detail = f": {health.detail}" if health.detail else ""
        causes.append(f"last health check on {_day(health.at)} said {health.status}{detail}")
    return tuple(causes)


def _wrong_tenant(connection: Connection, grant: Grant) -> str | None:
    """What the manifest expected, when the granted tenant is not it; None when it matches."""
    organization = connection.spec.organization
    tenant = grant.tenant
    assert tenant is not None  # only called for connected grants
    if organization.accepts(tenant.id, tenant.name, provider=connection.spec.provider):
        return None
    if organization.tenant_id is not None:
        return _tenant_text(organization.name, organization.tenant_id)
    return f"{organization.name} (not pinned; compared by name)"


def _explanations(catalogue: Catalogue, granted: Iterable[str], missing: Iterable[str]) -> tuple[str, ...]:
    """Why each missing scope is missing, but only where a reader could be surprised.

    A plainly absent scope needs no sentence ("missing" already says it), so a sentence is kept only
    when it differs from what an empty grant would get: a broad scope that does not satisfy a granular
    one, or a read scope granted where write is wanted.
    """
    granted = list(granted)
    sentences = []
    for scope in missing:
        sentence = why_not_covered(catalogue, granted, scope)
        if sentence is not None and sentence != why_not_covered(catalogue, (), scope):
            sentences.append(sentence)
    return tuple(sentences)


# --- building actions ------------------------------------------------------------------------------


def _connect(connection: Connection, grant: Grant | None) -> Action:
    spec = connection.spec
    evidence = [Evidence("desired", _sorted(spec.scopes))]
    reason = "No client has connected yet."
    if grant is not None:
        evidence.append(Evidence("state", "present, but consent was never completed (no tenant)"))
        reason = "The state has no tenant: the client has not completed consent yet."
    return Action(
        connection=connection.name,
        kind="connect",
        provider=spec.provider,
        organization=spec.organization.name,
        reason=reason,
        evidence=tuple(evidence),
        apply=f"issue an authorization link for the desired scopes to {_contact(connection)}",
        scopes=_sorted(spec.scopes),
    )


def _switch_provider(connection: Connection, grant: Grant) -> Action:
    spec = connection.spec
    tenant = grant.tenant
    assert tenant is not None
    return Action(
        connection=connection.name,
        kind="reduce",
        provider=spec.provider,
        organization=spec.organization.name,
        reason=(
            f"The grant is with {_display(grant.provider)} but the manifest now asks for {_display(spec.provider)}."
        ),
        evidence=(
            Evidence("provider", f"{grant.provider} -> {spec.provider}"),
            Evidence("tenant", _tenant_text(tenant.name, tenant.id)),
            Evidence("granted", _sorted(grant.granted_scopes)),
            Evidence("desired", _sorted(spec.scopes)),
        ),
        apply=(
            f"revoke the {_display(grant.provider)} grant, then issue a {_display(spec.provider)} "
            f"authorization link for the desired scopes to {_contact(connection)}"
        ),
        scopes=_sorted(spec.scopes),
        tenant_id=tenant.id,
    )


def _link_action(kind: ActionKind, connection: Connection, grant: Grant, findings: _Findings) -> Action:
    tenant = grant.tenant
    assert tenant is not None
    spec = connection.spec
    evidence = [Evidence("cause", cause) for cause in findings.reauthorize]
    evidence.append(Evidence("tenant", _tenant_text(tenant.name, tenant.id)))
    if findings.wrong_tenant is not None:
        evidence.append(Evidence("expected", findings.wrong_tenant))
    evidence += findings.scope_evidence()
    reason, apply = _link_texts(kind, findings, tenant.name)
    link = f"issue an authorization link for the desired scopes to {_contact(connection)}"
    return Action(
        connection=connection.name,
        kind=kind,
        provider=spec.provider,
        organization=spec.organization.name,
        reason=reason,
        evidence=tuple(evidence),
        apply=f"{apply}{link}{_scope_param_note(findings)}",
        scopes=_sorted(spec.scopes),
        tenant_id=tenant.id if kind == "wrong-organization" else None,
    )


def _link_texts(kind: ActionKind, findings: _Findings, tenant_name: str) -> tuple[str, str]:
    """The reason sentence, and what apply does before issuing the link, for one link action."""
    if kind == "reauthorize":
        # A fresh consent adds scopes but never removes them: excess stays until a later reduce.
        keeps = "note that the excess scopes stay after consent (a later plan proposes reduce); "
        return "The grant can no longer be used: the client must consent again.", keeps if findings.excess else ""
    if kind == "wrong-organization":
        lacks = f", and the grant lacks {len(findings.missing)} desired scope(s)" if findings.missing else ""
        reason = f"The client connected {tenant_name}, which is not the organisation the manifest names{lacks}."
        return reason, f"disconnect {tenant_name}, then "
    if kind == "reduce":
        provider = _display(findings.catalogue.provider)
        reason = (
            f"The grant holds {len(findings.excess)} scope(s) the manifest no longer wants; "
            f"{provider} only removes scopes by revoking and consenting again."
        )
        return reason, "revoke the grant (the app loses access until the client consents again), then "
    if findings.broad_vs_granular:
        reason = (
            "The grant holds broad scopes, which do not satisfy the granular scopes the manifest asks for: "
            "the client must consent again."
        )
        return reason, ""
    return f"The grant lacks {len(findings.missing)} desired scope(s).", ""


def _scope_param_note(findings: _Findings) -> str:
    if findings.catalogue.scope_param or not (findings.missing or findings.excess):
        return ""
    name = _display(findings.catalogue.provider)
    return f" ({name} fixes scopes when the app is registered: change them there first)"


def _refresh(connection: Connection, findings: _Findings) -> Action:
    settings = findings.settings
    assert findings.idle_days is not None
    left = settings.expire_after_days - findings.idle_days
    return Action(
        connection=connection.name,
        kind="refresh",
        provider=connection.spec.provider,
        organization=connection.spec.organization.name,
        reason=f"The refresh token has been idle for {findings.idle_days} days and expires in {left}.",
        evidence=(Evidence("refresh token", findings.token_age()),),
        apply="refresh the tokens now (persisting the rotated refresh token)",
    )


def _pin(connection: Connection, grant: Grant) -> Action:
    tenant = grant.tenant
    assert tenant is not None
    return Action(
        connection=connection.name,
        kind="pin",
        provider=connection.spec.provider,
        organization=connection.spec.organization.name,
        reason="The manifest does not pin the tenant the client connected.",
        evidence=(
            Evidence("tenant", _tenant_text(tenant.name, tenant.id)),
            Evidence("suggested edit", f"spec.organization.tenantId: {tenant.id}"),
        ),
        apply="suggest the manifest edit (nothing changes at the provider)",
        tenant_id=tenant.id,
    )


# --- small helpers ---------------------------------------------------------------------------------


def _sorted(scopes: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes)))


def _tenant_text(name: str, tenant_id: str) -> str:
    return f"{name} (tenantId {tenant_id})"


def _contact(connection: Connection) -> str:
    contact = connection.spec.contact
    return f"{contact.name} <{contact.email}>"


def _display(provider: str) -> str:
    return catalogue_for(provider).display_name or provider


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


__all__ = [
    "DESTRUCTIVE_KINDS",
    "KIND_ORDER",
    "LINK_KINDS",
    "SYMBOLS",
    "Action",
    "ActionKind",
    "Evidence",
    "Plan",
    "PlanSettings",
    "build_plan",
    "plan_connection",
    "plan_orphan",
]
