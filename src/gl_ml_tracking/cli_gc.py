"""``flask ml-tracking gc``: remove package files nothing refers to any more.

Registered on the ``ml-tracking`` group by :mod:`gl_ml_tracking.cli`.
"""
from __future__ import annotations

from typing import Optional

import click
from flask.cli import with_appcontext


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--grace-hours", type=click.FloatRange(min=0), default=24.0, show_default=True,
              help="Leave storage objects younger than this alone (uploads in flight).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no list, only the summary.")
@with_appcontext
def gc_command(dry_run: bool, grace_hours: float, quiet: bool) -> None:
    """Find and remove orphan packages (their run, experiment, logged model, trace or model version
    is gone) and orphan storage objects (no package file refers to them)."""
    from .state import get_state
    from .services import gc

    state = get_state()
    bar = None
    scanned = 0
    err = click.get_text_stream("stderr")

    def progress(stage: str, n: int, total: Optional[int]) -> None:
        nonlocal bar, scanned
        if quiet:
            return
        if stage == "packages":
            if bar is None:
                bar = click.progressbar(length=total, label="orphan packages", file=err)
            bar.update(n)
        else:  # the number of stored objects is not known in advance: a running count
            scanned += n
            click.echo(f"\rorphan objects found: {scanned}", nl=False, err=True)

    report = gc.collect_garbage(state.session, state.get_storage(), dry_run=dry_run,
                                grace_ms=int(grace_hours * 3600 * 1000), progress=progress)
    if bar is not None:
        bar.render_finish()
    if scanned:
        click.echo("", err=True)
    verb = "would remove" if dry_run else "removed"
    if not quiet:
        for project_id, package_type, name, version in report.orphan_packages:
            click.echo(f"orphan package: project {project_id} {package_type} {name}/{version}")
        for key in report.orphan_objects:
            click.echo(f"orphan object: {key}")
        for name in report.stale_uploads:
            click.echo(f"unfinished upload: {name}")
    click.echo(f"gl-ml-tracking gc: {verb} {len(report.orphan_packages)} orphan package(s)"
               + ("" if dry_run else f" ({report.files_deleted} file(s))")
               + f", {len(report.orphan_objects) if dry_run else report.objects_deleted} orphan object(s)"
               + f" and {len(report.stale_uploads)} unfinished upload(s).")
