"""``flask ml-tracking ...`` commands."""
from __future__ import annotations

import click
from flask.cli import AppGroup

ml_tracking_cli = AppGroup("ml-tracking", help="gl-ml-tracking: migrations and maintenance.")


@ml_tracking_cli.group("db")
def db_group():
    """Migrations of the extension's own tables."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Migrate the extension's tables to REVISION (default: head)."""
    from . import migrate

    migrate.upgrade(revision)
    click.echo(f"gl-ml-tracking: database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    from . import migrate

    migrate.downgrade(revision)


@db_group.command("current")
def db_current():
    from . import migrate

    migrate.current()


@db_group.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message):
    """(Developers) autogenerate a migration from the models."""
    from . import migrate

    migrate.revision(message)


from .cli_gc import gc_command  # noqa: E402 - `flask ml-tracking gc`

ml_tracking_cli.add_command(gc_command)

from .cli_webhooks import webhooks_group  # noqa: E402 - `flask ml-tracking webhooks deliver|prune` (issue 16)

ml_tracking_cli.add_command(webhooks_group)
