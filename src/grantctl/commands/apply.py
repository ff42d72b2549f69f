"""``grantctl apply``: carry out the plan, write the links, and tell a webhook about each one.

Exit 0 when everything was done, 2 when something was held back (destructive actions without
``--allow-destructive``) or a webhook could not be reached, 1 when an action failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from grantctl.apply import ApplyResult, apply_plan, issued_links
from grantctl.commands import Outcome
from grantctl.commands.plan import load_connections
from grantctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, GrantctlError
from grantctl.fileio import atomic_write_text
from grantctl.links import load_signing_key, parse_duration
from grantctl.maintenance import open_run
from grantctl.plan import Plan, PlanSettings, build_plan
from grantctl.plan_render import plan_document
from grantctl.repo import CONFIG_FILE, Repo
from grantctl.state.base import StateStore

NOTIFY_TIMEOUT = httpx.Timeout(10.0)
NOTIFY_ATTEMPTS = 3
LINKS_FORMAT_VERSION = 1
SYMBOL_WIDTH = 3


@dataclass(frozen=True)
class Delivery:
    """Whether the webhook took one link."""

    connection: str
    ok: bool
    detail: str


def run_apply(
    repo: Repo,
    *,
    plan_file: Path | None = None,
    allow_destructive: bool = False,
    links_out: Path | None = None,
    notify: str | None = None,
    fmt: str = "text",
    now: datetime | None = None,
    store: StateStore | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    notify_transport: httpx.BaseTransport | None = None,
) -> Outcome:
    """Plan (or check a saved plan is still current), then carry it out."""
    from grantctl.state.registry import open_store

    # Both are used only after links are issued and recorded: check them while nothing has changed.
    _check_links_out(links_out)
    _check_notify_url(notify)
    now = now or datetime.now(UTC)
    store = store or open_store(repo)
    plan = current_plan(repo, store, now=now)
    if plan_file is not None:
        _check_saved_plan(plan_file, plan)
    if not plan.has_changes:
        return Outcome("No changes. Every connection matches its grant.")
    key = load_signing_key(repo)
    # Checked before any action runs: a link that cannot be issued must not follow a revoke.
    parse_duration(repo.config.links.ttl, what=f"links.ttl in {CONFIG_FILE}")
    results = asyncio.run(_apply(repo, store, plan, key, allow_destructive, now, transport))
    links = links_document(results)
    if links_out is not None:
        # The links are bearer credentials until they expire: readable by this user only.
        atomic_write_text(links_out, json.dumps(links, indent=2) + "\n", mode=0o600)
    deliveries = notify_links(notify, links["links"], transport=notify_transport) if notify else []
    render = render_markdown if fmt == "markdown" else render_text
    return Outcome(render(results, deliveries), exit_code(results, deliveries))


def _check_links_out(path: Path | None) -> None:
    if path is None:
        return
    if not path.parent.is_dir():
        raise GrantctlError(
            f"--links-out {path}: the directory {path.parent} does not exist; create it or pick another path"
        )
    if path.is_dir():
        raise GrantctlError(f"--links-out {path}: is a directory; give a file name such as {path / 'links.json'}")


def _check_notify_url(url: str | None) -> None:
    """An http(s) URL with a host; the URL itself is never repeated (webhook URLs often embed a token)."""
    if url is None:
        return
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise GrantctlError(
            "--notify: the webhook URL is not an http(s) URL with a host; "
            "give one such as https://hooks.agency.example/grantctl"
        )


def current_plan(repo: Repo, store: StateStore, *, now: datetime) -> Plan:
    connections = load_connections(repo.manifest_paths())
    return build_plan(connections, store.read_grants(), now=now, settings=PlanSettings.from_config(repo.config))


def _check_saved_plan(path: Path, plan: Plan) -> None:
    """A saved plan is applied only while it still describes the repo (like Terraform's stale-plan check)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GrantctlError(f"{path}: not a plan saved by `grantctl plan --out` ({exc.__class__.__name__})") from None
    if not isinstance(saved, dict) or saved.get("actions") != plan_document(plan)["actions"]:
        raise GrantctlError(
            f"{path}: the saved plan no longer matches the manifests and state; run `grantctl plan --out` again "
            "and review the new plan"
        )


async def _apply(
    repo: Repo,
    store: StateStore,
    plan: Plan,
    key: Any,
    allow_destructive: bool,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None,
) -> list[ApplyResult]:
    async with open_run(repo, store, concurrency=8, clock=lambda: now, transport=transport) as ctx:
        return await apply_plan(ctx, plan, key=key, allow_destructive=allow_destructive)


def links_document(results: Sequence[ApplyResult]) -> dict[str, Any]:
    """The ``--links-out`` document: one entry per issued link, with whom to send it to."""
    entries = []
    for result in issued_links(results):
        assert result.link is not None
        assert result.connection is not None
        spec = result.connection.spec
        entries.append(
            {
                "connection": result.action.connection,
                "action": result.action.kind,
                "provider": spec.provider,
                "organization": spec.organization.name,
                "contact": {"name": spec.contact.name, "email": spec.contact.email},
                "scopes": list(result.link.record.scopes),
                "url": result.link.url,
                "expiresAt": result.link.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return {"formatVersion": LINKS_FORMAT_VERSION, "links": entries}


def notify_links(
    url: str,
    links: Sequence[dict[str, Any]],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """POST each link as JSON to ``url``; bounded retries on timeouts, 5xx and 429; never raises."""
    with httpx.Client(timeout=NOTIFY_TIMEOUT, transport=transport) as client:
        return [_deliver(client, url, link, sleep) for link in links]


def _deliver(client: httpx.Client, url: str, link: dict[str, Any], sleep: Callable[[float], None]) -> Delivery:
    name = link["connection"]
    problem = ""
    for attempt in range(1, NOTIFY_ATTEMPTS + 1):
        try:
            response = client.post(url, json=link)
        except httpx.HTTPError as exc:
            problem = f"{exc.__class__.__name__} (no answer)"
        else:
            if response.is_success:
                return Delivery(name, True, f"delivered (HTTP {response.status_code})")
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the webhook refused this link; trying again will not change its mind
        if attempt < NOTIFY_ATTEMPTS:
            sleep(0.5 * 2 ** (attempt - 1))
    return Delivery(name, False, f"not delivered after {attempt} attempt(s): {problem}")


def exit_code(results: Sequence[ApplyResult], deliveries: Sequence[Delivery]) -> int:
    if any(result.status == "failed" for result in results):
        return EXIT_ERROR
    if any(result.status == "held" for result in results) or any(not d.ok for d in deliveries):
        return EXIT_CHANGES
    return EXIT_OK


def summary_line(results: Sequence[ApplyResult], deliveries: Sequence[Delivery]) -> str:
    def count(status: str) -> int:
        return sum(result.status == status for result in results)

    parts = [
        f"{count('link')} link(s) issued",
        f"{count('refreshed')} refreshed",
        f"{count('done')} destructive action(s) done",
        f"{count('held')} held back",
        f"{count('suggested')} suggestion(s)",
        f"{count('failed')} failed",
    ]
    if deliveries:
        parts.append(f"{sum(d.ok for d in deliveries)} of {len(deliveries)} delivered to the webhook")
    return "Apply: " + ", ".join(parts) + "."


def render_text(results: Sequence[ApplyResult], deliveries: Sequence[Delivery]) -> str:
    lines = []
    for result in results:
        action = result.action
        lines.append(f"{action.symbol:>{SYMBOL_WIDTH}} {action.kind}  {action.connection}: {result.status}")
        lines.append(f"      {result.detail}")
        if result.link is not None:
            lines.append(f"      {result.link.url}")
    lines += [f"      webhook {d.connection}: {d.detail}" for d in deliveries if not d.ok]
    lines += ["", summary_line(results, deliveries)]
    return "\n".join(lines)


def render_markdown(results: Sequence[ApplyResult], deliveries: Sequence[Delivery]) -> str:
    lines = [
        "## grantctl apply",
        "",
        summary_line(results, deliveries),
        "",
        "| connection | action | result |",
        "|---|---|---|",
    ]
    for result in results:
        detail = result.detail.replace("|", "\\|")
        if result.link is not None:
            detail += f"<br>[authorization link]({result.link.url})"
        lines.append(f"| `{result.action.connection}` | {result.action.kind} | {result.status}: {detail} |")
    failed = [d for d in deliveries if not d.ok]
    if failed:
        lines += ["", "Webhook deliveries that failed:"] + [f"- `{d.connection}`: {d.detail}" for d in failed]
    return "\n".join(lines) + "\n"
