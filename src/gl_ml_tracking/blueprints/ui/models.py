"""Pages: registered models and their versions; the package registry (packages,
their files, downloads)."""
from __future__ import annotations

from flask import request

from .. import hooks as perms
from ..errors import InvalidParameter
from ..services import model_registry as registry
from ..services import packages as pkg
from ..services import ui_queries as q
from ..services.markdown_safe import render_markdown
from .ui_support import settings, load_page, render, token_pager

VERSIONS_PAGE = 50


def register(bp) -> None:
    bp.add_url_rule("/ml/models", "models", models_list)
    bp.add_url_rule("/ml/models/<path:name>", "model", model_page)
    bp.add_url_rule("/packages", "packages", packages_list)
    bp.add_url_rule("/packages/<int:package_id>", "package", package_page)
    bp.add_url_rule("/packages/<int:package_id>/files/<int:file_id>/download", "package_file", package_file)


def _quoted(text: str) -> str:
    """``text`` as a quoted string of the search grammar (which has no escapes)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise InvalidParameter("Names holding both ' and \" cannot be searched for.")


# --------------------------------------------------------------------------- models
def models_list():
    ctx = load_page(perms.READ_MODEL_REGISTRY)
    session = ctx.session
    search = request.args.get("search", "").strip()[:250]
    error, models, next_token = None, [], None
    try:
        models, next_token = registry.search_registered_models(
            session, ctx.project_id, f"name ILIKE {_quoted('%' + search + '%')}" if search else None,
            settings().ui_page_size, ["last_updated_timestamp DESC"],
            request.args.get("page_token") or None)
    except InvalidParameter as exc:
        error = exc.message
    views = registry.describe_models(session, models)
    counts = q.version_counts(session, [m.id for m in models])
    return render("models.html", status=400 if error else 200, views=views, counts=counts, search=search,
                  error=error, paging=token_pager(next_token))


def model_page(name: str):
    ctx = load_page(perms.READ_MODEL_REGISTRY)
    session = ctx.session
    model = registry.get_registered_model(session, ctx.project_id, name)
    view = registry.describe_models(session, [model])[0]
    versions, next_token = registry.search_model_versions(
        session, ctx.project_id, f"name = {_quoted(model.name)}", VERSIONS_PAGE, ["version_number DESC"],
        request.args.get("page_token") or None)
    version_views = registry.describe_versions(session, versions)
    runs = q.runs_by_uuids(session, ctx.project_id, [v.run_uuid for v in versions])
    return render("model.html", model=model, view=view, versions=version_views, runs=runs,
                  description_html=render_markdown(model.description) if model.description else None,
                  paging=token_pager(next_token))


# --------------------------------------------------------------------------- packages
def packages_list():
    ctx = load_page(perms.READ_PACKAGE)
    session = ctx.session
    search = request.args.get("search", "").strip()[:255]
    after = request.args.get("after", "")
    page = pkg.list_packages(session, ctx.project_id, package_name=search or None, sort="desc",
                             per_page=settings().ui_page_size, keyset=True,
                             after_id=int(after) if after.isdecimal() else None)
    sizes = q.package_sizes(session, [p.id for p in page.packages])
    return render("packages.html", packages=page.packages, sizes=sizes, search=search,
                  next_after=page.next_cursor, is_first=not after.isdecimal())


def package_page(package_id: int):
    ctx = load_page(perms.READ_PACKAGE)
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


def package_file(package_id: int, file_id: int):
    from .packages import file_response

    ctx = load_page(perms.READ_PACKAGE)
    package = pkg.get_package(ctx.session, ctx.project_id, package_id)
    file = pkg.get_file_by_id(ctx.session, package, file_id)
    return file_response(file)
