"""Pages: registered models and their versions."""
from __future__ import annotations

from flask import redirect, request, url_for

from ... import hooks as perms
from ...errors import InvalidParameter
from ...services import registered_models, registry_describe, registry_search
from ...services.prompts import is_prompt
from ...services import ui_queries as q
from ...services.markdown_safe import render_markdown
from .support import PageContext, add_page, render, settings, token_pager

VERSIONS_PAGE = 50


def register(bp) -> None:
    models = (perms.READ_MODEL_REGISTRY,)
    add_page(bp, "/ml/models", "models", models_list, read=models)
    add_page(bp, "/ml/models/<path:name>", "model", model_page, read=models)


def _quoted(text: str) -> str:
    """``text`` as a quoted string of the search grammar (which has no escapes)."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise InvalidParameter("Names holding both ' and \" cannot be searched for.")


# --------------------------------------------------------------------------- models
def models_list(ctx: PageContext):
    session = ctx.session
    search = request.args.get("search", "").strip()[:250]
    error, models, next_token = None, [], None
    try:
        models, next_token = registry_search.search_registered_models(
            session, ctx.project_id, f"name ILIKE {_quoted('%' + search + '%')}" if search else None,
            settings().ui_page_size, ["last_updated_timestamp DESC"],
            request.args.get("page_token") or None)
    except InvalidParameter as exc:
        error = exc.message
    views = registry_describe.describe_models(session, models)
    counts = q.version_counts(session, [m.id for m in models])
    return render("models.html", status=400 if error else 200, views=views, counts=counts, search=search,
                  error=error, paging=token_pager(next_token))


def model_page(ctx: PageContext, name: str):
    session = ctx.session
    model = registered_models.get_registered_model(session, ctx.project_id, name)
    if is_prompt(session, model):  # prompts have their own pages, as in MLflow's UI
        return redirect(url_for(".prompt", name=model.name))
    view = registry_describe.describe_models(session, [model])[0]
    versions, next_token = registry_search.search_model_versions(
        session, ctx.project_id, f"name = {_quoted(model.name)}", VERSIONS_PAGE, ["version_number DESC"],
        request.args.get("page_token") or None)
    version_views = registry_describe.describe_versions(session, versions)
    runs = q.runs_by_uuids(session, ctx.project_id, [v.run_uuid for v in versions])
    return render("model.html", model=model, view=view, versions=version_views, runs=runs,
                  description_html=render_markdown(model.description) if model.description else None,
                  paging=token_pager(next_token))
