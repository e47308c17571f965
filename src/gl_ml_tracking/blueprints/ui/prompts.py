"""Pages: the prompt registry (prompts list; a prompt with its versions, each template, and
a diff between two versions)."""
from __future__ import annotations

from flask import request

from ... import hooks as perms
from ...errors import InvalidParameter
from ...services import prompts as prompt_service
from ...services import registry_describe
from ...services.markdown_safe import render_markdown
from .support import PageContext, add_page, render, settings, token_pager

VERSIONS_PAGE = 50


def register(bp) -> None:
    read = (perms.READ_MODEL_REGISTRY,)
    add_page(bp, "/ml/prompts", "prompts", prompts_list, read=read)
    add_page(bp, "/ml/prompts/<path:name>", "prompt", prompt_page, read=read)


def prompts_list(ctx: PageContext):
    search = request.args.get("search", "").strip()[:250]
    error, views, next_token = None, [], None
    try:
        views, next_token = prompt_service.list_prompts(ctx.session, ctx.project_id, search, settings().ui_page_size,
                                                        request.args.get("page_token") or None)
    except InvalidParameter as exc:
        error = exc.message
    return render("prompts.html", status=400 if error else 200, views=views, search=search, error=error,
                  user_tags=prompt_service.user_tags, paging=token_pager(next_token))


def _version_arg(name: str):
    value = request.args.get(name, "").strip()
    return int(value) if value.isdecimal() and len(value) < 10 else None


def prompt_page(ctx: PageContext, name: str):
    session = ctx.session
    model = prompt_service.get_prompt(session, ctx.project_id, name)
    view = registry_describe.describe_models(session, [model])[0]
    versions, next_token = prompt_service.prompt_versions(session, ctx.project_id, model, VERSIONS_PAGE,
                                                          request.args.get("page_token") or None)
    old, new = _version_arg("from"), _version_arg("to")
    if (old is None or new is None) and len(versions) >= 2 and not request.args.get("page_token"):
        old, new = versions[1].number, versions[0].number  # the two newest by default
    diff = None
    if old is not None and new is not None:
        diff = prompt_service.diff_lines(prompt_service.version_template(session, ctx.project_id, model, old),
                                         prompt_service.version_template(session, ctx.project_id, model, new))
    return render("prompt.html", model=model, view=view, versions=versions, tags=prompt_service.user_tags(view.tags),
                  description_html=render_markdown(model.description) if model.description else None,
                  diff=diff, diff_from=old, diff_to=new, paging=token_pager(next_token))
