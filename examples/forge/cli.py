"""``flask forge ...``: create the forge's tables, seed demo data, make tokens."""
from __future__ import annotations

import os
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from . import auth
from .ci import ci_job_command
from .projects import create_project_command
from .models import User, create_forge_tables, db, utcnow
from .seed import seed

forge_cli = AppGroup("forge", help="The example forge: database, demo data, tokens.")


@forge_cli.command("init-db")
def init_db_command() -> None:
    """Create the forge's own tables (run `flask ml-tracking db upgrade` for the tracking ones)."""
    create_forge_tables()
    click.echo("Forge tables created.")


@forge_cli.command("seed")
@click.option("--base-url", default=lambda: os.environ.get("FORGE_BASE_URL", "http://127.0.0.1:5000"),
              show_default="$FORGE_BASE_URL or http://127.0.0.1:5000",
              help="Where the forge is served, for the printed URLs.")
def seed_command(base_url: str) -> None:
    """Create demo users, group and projects (idempotent) and print export lines.

    DEMO_PASSWORD, DEMO_TOKEN and DEMO_OUTSIDER_TOKEN choose the credentials.
    """
    create_forge_tables()  # so `seed` alone works on a new database
    try:
        seed(base_url=base_url, say=click.echo)
    except ValueError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc


@forge_cli.command("create-token")
@click.argument("username")
@click.option("--scopes", default="api", show_default=True, help="api or read_api (comma list).")
@click.option("--name", default="cli", show_default=True, help="The token's name.")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None, help="Expire after this many days.")
def create_token_command(username: str, scopes: str, name: str, expires_in_days: int | None) -> None:
    """Print a new personal access token for USERNAME."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        _row, token = auth.create_personal_access_token(user, name, scopes, expires_at=expires_at)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(token)


forge_cli.add_command(ci_job_command)  # flask forge ci-job: play a CI job end to end (examples/forge/ci.py)
forge_cli.add_command(create_project_command)  # flask forge create-project (examples/forge/projects.py)
