"""``grantctl guide NAME``: the setup guide we send a client, in Markdown or HTML.

The reader is a bookkeeper, not an engineer: short steps, exact values to copy, scopes in plain words.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from grantctl.catalogue import describe
from grantctl.commands import Outcome
from grantctl.errors import GrantctlError
from grantctl.manifest import load_connection_fast
from grantctl.models import Connection
from grantctl.repo import Repo

PORTALS = {
    "xero": ("Xero developer portal", "https://developer.xero.com/app/manage"),
    "hubspot": ("HubSpot developer account", "https://developers.hubspot.com/"),
    "pipedrive": ("Pipedrive Developer Hub", "https://developers.pipedrive.com/"),
}


@dataclass(frozen=True)
class Step:
    title: str
    lines: list[str]
    code: str | None = None


def run_guide(repo: Repo, name: str, *, fmt: str) -> Outcome:
    path = repo.manifest_path(name)
    if not path.is_file():
        raise GrantctlError(f"no connection {name!r}: {repo.relative(path)} does not exist (see `grantctl new`)")
    connection = load_connection_fast(path)
    title = f"Connect {connection.spec.organization.name} to us"
    steps = guide_steps(connection, redirect_uri=repo.config.redirect_uri)
    render = _html if fmt == "html" else _markdown
    return Outcome(render(title, connection, steps))


def guide_steps(connection: Connection, *, redirect_uri: str) -> list[Step]:
    spec = connection.spec
    portal, portal_url = PORTALS[spec.provider]
    scope_lines = [f"{describe(spec.provider, scope)} (`{scope}`)" for scope in spec.scopes]
    create = _create_app_step(spec.provider, portal, portal_url)
    steps = [
        create,
        Step(
            "Enter this redirect URI exactly as shown (no spaces, nothing added):",
            [],
            code=redirect_uri,
        ),
    ]
    if spec.provider == "pipedrive":
        # Pipedrive fixes the scopes when the app is registered; they cannot be asked for later.
        steps.append(Step("Tick exactly these scopes in the app's settings:", scope_lines))
    steps += [
        Step(
            "Copy the client id, then generate a client secret and copy it at once.",
            ["The secret is shown only once. If you lose it, generate a new one and send us that."],
        ),
        Step(
            "Send both to us through the secure channel we agreed on.",
            [
                f"Your contact is {connection.metadata.owner}.",
                "Please never send the secret by plain email or chat.",
            ],
        ),
        Step(
            "We then send you an authorization link. Open it, sign in, and:",
            [
                f"pick the organisation **{spec.organization.name}** (only that one);",
                "approve the access listed below, then you land on a page that says whether it worked.",
            ],
        ),
    ]
    if spec.provider != "pipedrive":
        steps.append(Step("The link will ask you to allow:", scope_lines))
    return steps


def _create_app_step(provider: str, portal: str, portal_url: str) -> Step:
    if provider == "xero":
        lines = [
            f"Sign in at {portal_url} and choose **New app**.",
            "Integration type: **Web app**. App name: anything that tells you it is for us.",
            "Company or application URL: your own website.",
        ]
    else:
        lines = [f"Sign in at {portal_url} and create a new public app."]
    return Step(f"Create an app in the {portal}.", lines)


def _markdown(title: str, connection: Connection, steps: list[Step]) -> str:
    out = [f"# {title}", "", f"Connection: `{connection.name}` ({connection.spec.provider})", ""]
    for number, step in enumerate(steps, start=1):
        out.append(f"{number}. {step.title}")
        out.extend(f"   - {line}" for line in step.lines)
        if step.code:
            out += ["", "   ```", f"   {step.code}", "   ```"]
    return "\n".join(out) + "\n"


def _html(title: str, connection: Connection, steps: list[Step]) -> str:
    def text(value: str) -> str:
        # The guide's own markup is **bold** and `code`; everything else is escaped.
        escaped = html.escape(value)
        escaped = _pairs(escaped, "**", "<strong>", "</strong>")
        return _pairs(escaped, "`", "<code>", "</code>")

    items = []
    for step in steps:
        body = "".join(f"<li>{text(line)}</li>" for line in step.lines)
        sub = f"<ul>{body}</ul>" if body else ""
        code = f"<pre><code>{html.escape(step.code)}</code></pre>" if step.code else ""
        items.append(f"<li><p>{text(step.title)}</p>{sub}{code}</li>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Connection: <code>{html.escape(connection.name)}</code></p>"
        f"<ol>{''.join(items)}</ol></body></html>\n"
    )


def _pairs(text: str, marker: str, opening: str, closing: str) -> str:
    parts = text.split(marker)
    if len(parts) % 2 == 0:  # unbalanced: leave as it is
        return text
    return "".join(part if i % 2 == 0 else f"{opening}{part}{closing}" for i, part in enumerate(parts))
