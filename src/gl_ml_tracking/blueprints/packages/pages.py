"""Pages of the package registry (packages, their files, downloads), mounted on
the UI blueprint beside the other pages of the project (``/<project>/-/packages``)."""
from __future__ import annotations

from flask import request

from ... import hooks as perms
from ...http.files import file_response
from ...services import packages as pkg
from ...services import ui_queries as q
from ..ui.support import PageContext, add_page, render, settings


def register(bp) -> None:
    packages = (perms.READ_PACKAGE,)
    add_page(bp, "/packages", "packages", packages_list, read=packages)
    add_page(bp, "/packages/<int:package_id>", "package", package_page, read=packages)
    add_page(bp, "/packages/<int:package_id>/files/<int:file_id>/download", "package_file", package_file,
             read=packages)


# --------------------------------------------------------------------------- packages
def packages_list(ctx: PageContext):
    session = ctx.session
    search = request.args.get("search", "").strip()[:255]
    cursor = request.args.get("cursor") or None  # the packages API's signed keyset cursor
    page = pkg.list_packages(session, ctx.project_id, package_name=search or None, sort="desc",
                             per_page=settings().ui_page_size, keyset=True, cursor=cursor)
    sizes = q.package_sizes(session, [p.id for p in page.packages])
    return render("packages.html", packages=page.packages, sizes=sizes, search=search,
                  next_token=page.next_token, is_first=cursor is None)


def package_page(ctx: PageContext, package_id: int):
    session = ctx.session
    package = pkg.get_package(session, ctx.project_id, package_id)
    files = q.package_files_page(session, package, 100, request.args.get("cursor"))
    count, total = q.package_sizes(session, [package.id]).get(package.id, (0, 0))
    run = None
    if package.name.startswith("ml_experiment_") and package.version.isdecimal():
        run = q.runs_by_iids(session, ctx.project_id, [int(package.version)])
        run = run[0] if run and run[0].experiment.iid == _experiment_iid(package.name) else None
    return render("package.html", package=package, files=files, file_count=count, total_size=total, run=run)


def _experiment_iid(package_name: str):
    tail = package_name[len("ml_experiment_"):]
    return int(tail) if tail.isdecimal() else None  # not isdigit: int("²") fails


def package_file(ctx: PageContext, package_id: int, file_id: int):
    package = pkg.get_package(ctx.session, ctx.project_id, package_id)
    file = pkg.get_file_by_id(ctx.session, package, file_id)
    return file_response(file)
