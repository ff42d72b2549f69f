"""The ``grantctl`` command line: options in, one command function called, its outcome printed.

Command modules are imported inside each command so ``grantctl plan`` does not pay for the
server, the HTTP client or jsonschema. Errors are turned into exit codes in one place: :func:`main`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from grantctl import __version__
from grantctl.commands import Outcome
from grantctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, GrantctlError

F = TypeVar("F", bound=Callable[..., Any])


def repo_option(func: F) -> F:
    """``--repo DIR``: the connections repo (default: found from the working directory upwards)."""
    return click.option(
        "--repo",
        "repo_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Connections repo (default: the nearest directory upwards holding grantctl.yaml).",
    )(func)


def format_option(*choices: str, default: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


def _repo(repo_dir: Path | None) -> Any:
    from grantctl.repo import find_repo

    return find_repo(repo_dir)


def _emit(outcome: Outcome) -> None:
    """Print an outcome and exit with its code."""
    for note in outcome.notes:
        click.echo(note, err=True)
    if outcome.output:
        click.echo(outcome.output, nl=not outcome.output.endswith("\n"))
    sys.exit(outcome.exit_code)


class _Group(click.Group):
    """Turns grantctl errors into one-line messages and exit codes, for every command.

    Usage errors exit 1, not click's 2: in grantctl, 2 means "changes / attention needed".
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR  # type: ignore[misc]  # click types it as a class constant
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_ERROR  # type: ignore[misc]  # click types it as a class constant
            raise
        except GrantctlError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # a file we may not read or write: say which, without a traceback
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc.__class__.__name__}{where}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="grantctl")
def cli() -> None:
    """Declarative, reviewable OAuth connections to your clients' Xero, HubSpot and Pipedrive.

    \b
    Typical flow:
      grantctl new acme-ltd --provider xero --org "Acme Ltd" ...   # add a client
      grantctl validate                                            # check manifests and secrets
      grantctl plan                                                # what each client still has to grant
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option("text", "json", "github", default="text")
@repo_option
def validate(paths: tuple[Path, ...], fmt: str, repo_dir: Path | None) -> None:
    """Check manifests, the repo config and the encrypted secrets files.

    Exit 0 when everything is valid (warnings allowed), 1 otherwise. `--format github` prints
    workflow annotations at file:line:col.

    \b
    Example:
      grantctl validate
      grantctl validate connections/acme-ltd.yaml --format github
    """
    from grantctl.commands.validate import run_validate

    _emit(run_validate(_repo(repo_dir), list(paths), fmt=fmt))


@cli.command()
@click.option("--check", is_flag=True, help="Exit 1 when the committed schemas are stale, instead of writing.")
@repo_option
def schema(check: bool, repo_dir: Path | None) -> None:
    """Write (or --check) the JSON Schemas in schemas/ generated from the models.

    \b
    Example:
      grantctl schema --check
    """
    from grantctl.commands.schema import run_schema

    _emit(run_schema(_repo(repo_dir).root, check=check))


@cli.command()
@click.argument("provider", required=False)
@format_option("text", "json", default="text")
def scopes(provider: str | None, fmt: str) -> None:
    """List the scope catalogue of one provider, or of all.

    \b
    Example:
      grantctl scopes xero
    """
    from grantctl.commands.scopes import run_scopes

    _emit(run_scopes(provider, fmt=fmt))


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--public-url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Where `grantctl serve` will be reachable.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the new age private key (default: ~/.config/grantctl/<repo>.agekey). Never inside the repo.",
)
def init(directory: Path, public_url: str, key_file: Path | None) -> None:
    """Scaffold a connections repo with a fresh age key.

    \b
    Example:
      grantctl init my-connections --public-url https://connect.agency.example
    """
    from grantctl.commands.init import run_init

    _emit(run_init(directory, public_url=public_url, key_file=key_file))


@cli.command()
@click.argument("name")
@click.option("--provider", type=click.Choice(["xero", "hubspot", "pipedrive"]), required=True)
@click.option("--org", "organization", required=True, help="The organisation the client must pick.")
@click.option("--owner", required=True, help="Who in our company answers for this connection (email).")
@click.option("--contact", "contact_email", required=True, help="Who receives the links (email).")
@click.option("--contact-name", default=None, help="Contact's name (default: from the email).")
@click.option("--scope", "scope_list", multiple=True, required=True, help="A scope; repeat for each.")
@click.option("--created-on", default=None, help="When the client created the app (YYYY-MM-DD).")
@click.option("--credentials-from-stdin", is_flag=True, help="Read client id and secret as two lines on stdin.")
@repo_option
def new(
    name: str,
    provider: str,
    organization: str,
    owner: str,
    contact_email: str,
    contact_name: str | None,
    scope_list: tuple[str, ...],
    created_on: str | None,
    credentials_from_stdin: bool,
    repo_dir: Path | None,
) -> None:
    """Add a connection: the manifest and its encrypted credentials.

    The client id and secret are asked for without echo (or read from stdin with
    --credentials-from-stdin); they are never accepted as arguments.

    \b
    Example:
      grantctl new acme-ltd --provider xero --org "Acme Ltd" --owner jane@agency.example \\
        --contact sam@acme.example --scope openid --scope offline_access --scope accounting.invoices
    """
    from grantctl.commands.new import NewConnection, run_new

    request = NewConnection(
        name=name,
        provider=provider,
        organization=organization,
        owner=owner,
        contact_email=contact_email,
        contact_name=contact_name,
        scopes=list(scope_list),
        created_on=created_on,
    )
    _emit(run_new(_repo(repo_dir), request, read_credentials=_credential_reader(credentials_from_stdin)))


def _credential_reader(from_stdin: bool) -> Callable[[], tuple[str, str]]:
    def read() -> tuple[str, str]:
        if from_stdin:
            lines = sys.stdin.read().splitlines()
            if len(lines) < 2:
                raise GrantctlError("stdin: expected two lines: the client id, then the client secret")
            return lines[0].strip(), lines[1].strip()
        client_id = click.prompt("Client id", hide_input=True, err=True)
        client_secret = click.prompt("Client secret", hide_input=True, err=True)
        return str(client_id).strip(), str(client_secret).strip()

    return read


@cli.command()
@click.argument("name")
@format_option("markdown", "html", default="markdown")
@repo_option
def guide(name: str, fmt: str, repo_dir: Path | None) -> None:
    """Print the client-facing setup guide for one connection.

    \b
    Example:
      grantctl guide example-acme-granular
    """
    from grantctl.commands.guide import run_guide

    _emit(run_guide(_repo(repo_dir), name, fmt=fmt))


@cli.command()
@format_option("text", "json", "markdown", default="text")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the plan (JSON) for `grantctl apply --plan`.",
)
@click.option(
    "--base",
    default=None,
    help="Also show how the desired state changed since this git ref (e.g. origin/main).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@repo_option
def plan(fmt: str, out: Path | None, base: str | None, detailed_exitcode: bool, repo_dir: Path | None) -> None:
    """Compare what each client should have granted with what they did. No network, no keys.

    \b
    Example:
      grantctl plan
      grantctl plan --format markdown --base origin/main --detailed-exitcode
    """
    from grantctl.commands.plan import run_plan

    color = fmt == "text" and sys.stdout.isatty()
    _emit(run_plan(_repo(repo_dir), fmt=fmt, out=out, base=base, detailed_exitcode=detailed_exitcode, color=color))


@cli.command()
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A plan saved with `grantctl plan --out`; refused when it no longer matches the repo.",
)
@click.option("--allow-destructive", is_flag=True, help="Also revoke, reduce and disconnect (after review).")
@click.option(
    "--links-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the issued links as JSON (mode 0600: links are bearer credentials until they expire).",
)
@click.option("--notify", default=None, metavar="URL", help="POST each link as JSON to this webhook.")
@format_option("text", "markdown", default="text")
@repo_option
def apply(
    plan_file: Path | None,
    allow_destructive: bool,
    links_out: Path | None,
    notify: str | None,
    fmt: str,
    repo_dir: Path | None,
) -> None:
    """Carry out the plan: links for every gap, due refreshes, approved revocations.

    Exit 0 all done, 2 something was held back or not delivered, 1 an action failed.

    \b
    Example:
      grantctl apply --links-out links.json --notify https://hooks.agency.example/grantctl
    """
    from grantctl.commands.apply import run_apply

    repo = _repo(repo_dir)
    _emit(
        run_apply(
            repo, plan_file=plan_file, allow_destructive=allow_destructive, links_out=links_out, notify=notify, fmt=fmt
        )
    )


@cli.command()
@repo_option
def verify(repo_dir: Path | None) -> None:
    """Check the SOPS MAC of every state file; report tampered files by name.

    \b
    Example:
      SOPS_AGE_KEY_FILE=~/.config/grantctl/team.agekey grantctl verify
    """
    from grantctl.commands.verify import run_verify

    _emit(run_verify(_repo(repo_dir)))


@cli.command()
@click.argument("name")
@click.option(
    "--ttl", default=None, help="How long the link stays valid, e.g. 7d, 12h (default: links.ttl in grantctl.yaml)."
)
@repo_option
def link(name: str, ttl: str | None, repo_dir: Path | None) -> None:
    """Print one connection's authorization link.

    \b
    Example:
      GRANTCTL_SIGNING_KEY=... grantctl link acme-ltd --ttl 3d
    """
    from grantctl.commands.link import run_link

    _emit(run_link(_repo(repo_dir), name, ttl=ttl))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@repo_option
def serve(host: str, port: int, repo_dir: Path | None) -> None:
    """Run the link and callback server (/connect/TOKEN, /callback, /healthz).

    \b
    Example:
      grantctl serve --host 0.0.0.0 --port 8080
    """
    from grantctl.commands.serve import run_serve

    run_serve(_repo(repo_dir), host=host, port=port)


@cli.command()
@click.argument("name")
@click.option(
    "--port", default=8765, show_default=True, type=int, help="Local port for http://localhost:PORT/callback."
)
@click.option("--open-browser/--no-open-browser", default=False, show_default=True)
@repo_option
def connect(name: str, port: int, open_browser: bool, repo_dir: Path | None) -> None:
    """Authorize one connection yourself, through a local callback (like Xero's xoauth).

    \b
    Example:
      grantctl connect acme-ltd --port 8765 --open-browser
    """
    from grantctl.commands.connect import run_connect

    _emit(run_connect(_repo(repo_dir), name, port=port, open_browser=open_browser))


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Refresh even connections that are not due.")
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 512))
@format_option("text", "json", "markdown", default="text")
@repo_option
def refresh(names: tuple[str, ...], force: bool, concurrency: int, fmt: str, repo_dir: Path | None) -> None:
    """Refresh due tokens, persisting every rotated refresh token before anything else.

    Exit 0 all fine, 2 some connection needs a person, 1 error.

    \b
    Example:
      grantctl refresh
      grantctl refresh acme-ltd --force
    """
    from grantctl.commands.refresh import run_refresh

    _emit(run_refresh(_repo(repo_dir), list(names), force=force, concurrency=concurrency, fmt=fmt))


@cli.command()
@click.argument("names", nargs=-1)
@format_option("text", "json", "markdown", default="text")
@repo_option
def health(names: tuple[str, ...], fmt: str, repo_dir: Path | None) -> None:
    """Check each connection against the provider and say what needs attention, with evidence.

    Exit 0 all healthy, 2 some need attention, 1 error.

    \b
    Example:
      grantctl health --format markdown
    """
    from grantctl.commands.health import run_health

    _emit(run_health(_repo(repo_dir), list(names), fmt=fmt))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=int)
@click.option(
    "--seed",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Seed YAML (apps, organisations, users); default: the bundled example seed.",
)
def emulator(host: str, port: int, seed: Path | None) -> None:
    """Run the Xero emulator on loopback (for tests, benchmarks and the offline walkthrough).

    \b
    Example:
      grantctl emulator --port 8900
    """
    from grantctl.emulator import EXAMPLE_SEED_PATH, run

    try:
        run(host, port, seed or EXAMPLE_SEED_PATH)
    except ValueError as exc:  # a non-loopback host: the control endpoints have no authentication
        raise click.BadParameter(str(exc), param_hint="--host") from None


@cli.command()
@click.argument("names", nargs=-1)
@format_option("table", "markdown", "json", "csv", default="table")
@click.option("--history", is_flag=True, help="Also list, from git history, each change to each grant.")
@repo_option
def audit(names: tuple[str, ...], fmt: str, history: bool, repo_dir: Path | None) -> None:
    """Which access each client granted, by whom and when. No keys, no network.

    \b
    Example:
      grantctl audit --format csv > access-review.csv
      grantctl audit acme-ltd --history
    """
    from grantctl.commands.audit import run_audit

    _emit(run_audit(_repo(repo_dir), fmt=fmt, history=history, names=list(names)))


def main() -> None:
    """Console entry point."""
    cli(prog_name="grantctl")


if __name__ == "__main__":  # pragma: no cover
    main()
