"""What every page of the UI shares: the pages' surface of the request
pipeline (the project and the caller's rights, CSRF-checked POSTs, error
pages), template helpers and security headers.

Pages are mounted under ``GL_ML_TRACKING_UI_PREFIX`` (``/<path:project_path>/-``);
the blueprint pops ``project_path`` and puts it back into every ``url_for``
of its own endpoints, so views and templates never pass it around.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlencode

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from ... import access
from ... import hooks as perms
from ...errors import InvalidParameter, MlflowError, PermissionDenied, ResourceDoesNotExist
from ...http.pipeline import Access, Caller, Surface, serve
from ...http.urls import API_BLUEPRINT, UI_BLUEPRINT, endpoint_url
from ...state import get_state
from ...services import csrf
from ...services.markdown_safe import render_markdown

BP_NAME = UI_BLUEPRINT
STATIC_BP_NAME = "gl_ml_tracking_static"


def settings() -> Any:
    """The extension's settings (``config.Settings``) for the current app."""
    return get_state().config


# --------------------------------------------------------------------------- page context
@dataclass
class PageContext:
    project: Any
    project_id: str
    user: Any

    def can(self, permission: str) -> bool:
        return access.can(self.project, permission)

    @property
    def can_write(self) -> bool:
        return self.can(perms.WRITE_MODEL_EXPERIMENTS)

    @property
    def can_read_builds(self) -> bool:
        return self.can(perms.READ_BUILD)

    @property
    def can_read_packages(self) -> bool:
        return self.can(perms.READ_PACKAGE)

    @property
    def can_read_registry(self) -> bool:
        return self.can(perms.READ_MODEL_REGISTRY)

    @property
    def can_write_registry(self) -> bool:
        return self.can(perms.WRITE_MODEL_REGISTRY)

    @property
    def session(self):
        return get_state().session


class FormRejected(MlflowError):
    """A POST that did not prove it came from one of our pages (CSRF)."""

    error_code = "PERMISSION_DENIED"
    status = 403


@dataclass(frozen=True)
class Done:
    """What a POST answers once its change is committed: a notice, then a
    redirect (the PRG pattern). Flashed only after the commit, so a failed
    commit leaves no stale notice."""

    message: str
    endpoint: str
    values: dict = field(default_factory=dict)


def done(message: str, endpoint: str, **values: Any) -> Done:
    return Done(message, endpoint, values)


def open_page(caller: Caller) -> PageContext:
    """The page's context, once the project is readable. GET requests for a
    non-canonical path (the numeric id, other letter case) are redirected to
    the project's full path."""
    path = g.get("glml_project_path") or ""
    canonical = getattr(caller.project, "full_path", None)
    if request.method == "GET" and canonical and canonical != path:
        g.glml_project_path = canonical
        values = request.args.to_dict(flat=False)
        values.update(request.view_args or {})
        abort(redirect(url_for(request.endpoint, **values), code=302))
    g.glml_page = PageContext(project=caller.project, project_id=caller.project_id, user=caller.user)
    return g.glml_page


def _finish(result: Any) -> Any:
    if isinstance(result, Done):
        flash(result.message, "glml-success")
        return redirect(url_for(f"{BP_NAME}.{result.endpoint}", **result.values), code=303)
    return result


def add_page(bp: Any, rule: str, endpoint: str, view: Callable[..., Any], *,
             read: Sequence[str] = (perms.READ_MODEL_EXPERIMENTS,), write: Optional[str] = None,
             surface: Optional[Surface] = None) -> None:
    """Mount ``view(ctx, **url values)``: a GET page needing the ``read`` permissions
    (else 404, whether the project exists or not), or, with ``write``, a CSRF-checked
    POST whose change is committed. A caller who may not write gets 404 too, as in
    GitLab's UI (nothing is revealed)."""
    needed = Access(tuple(read), (write,) if write else (), authenticate=False)

    def run(ctx: PageContext, kwargs: dict) -> Any:
        if write:
            try:
                csrf.check_csrf()
            except csrf.CsrfError as exc:
                raise FormRejected(str(exc)) from None
        return view(ctx, **kwargs)

    def page(**kwargs: Any) -> Any:
        return serve(surface or PAGES, needed, g.get("glml_project_path") or "", lambda ctx: run(ctx, kwargs),
                     read_only=not write)

    bp.add_url_rule(rule, endpoint, page, methods=["POST"] if write else ["GET"])


# --------------------------------------------------------------------------- formatting
def fmt_time(ms: Optional[int]) -> str:
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_iso(ms: Optional[int]) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def fmt_ago(ms: Optional[int]) -> str:
    if not ms:
        return "never"
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("year", 31536000), ("month", 2592000), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def fmt_duration(start: Optional[int], end: Optional[int]) -> str:
    if not start or not end or end < start:
        return "—"
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m {sec:02d}s" if hours else f"{minutes}m {sec:02d}s"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes:02d}m"


def fmt_bytes(n: Optional[int]) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_number(value: Any, is_nan: bool = False) -> str:
    """A metric value for a table cell: NaN and infinities by name, otherwise at
    most 6 significant digits (the full value is in the cell's title)."""
    if is_nan or value is None:
        return "NaN"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    return str(value)


STATUS_BADGES = {
    "RUNNING": "info",
    "SCHEDULED": "neutral",
    "FINISHED": "success",
    "FAILED": "danger",
    "KILLED": "warning",
}


def static_url(filename: str) -> str:
    from ...version import __version__

    return url_for(f"{STATIC_BP_NAME}.static", filename=filename, v=__version__)


def query_url(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (None removes)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None or value == [] or value == "":
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [value]
    query = urlencode([(k, v) for k, values in args.items() for v in values])
    return request.path + ("?" + query if query else "")


MAX_TRAIL = 50  # previous-page tokens kept in the URL


def _trail() -> list[str]:
    """Tokens of the pages before this one (for "Previous" with keyset tokens)."""
    raw = request.args.get("trail", "")
    return [t for t in raw.split(".") if t][-MAX_TRAIL:] if raw else []


def token_pager(next_token: Optional[str]) -> dict:
    """Links for first / previous / next over opaque "next page" tokens (the
    searches' keyset tokens), keeping every other query argument. "Previous"
    works because the URL carries the trail of tokens that led here."""
    trail = _trail()
    current = request.args.get("page_token", "")
    here_is_first = not current
    pager = {"first": None, "prev": None, "next": None, "number": len(trail) + 1}
    if not here_is_first:
        pager["first"] = query_url(page_token=None, trail=None)
        previous = trail[-1] if trail else ""
        # "~" marks the first page inside the trail (its token is empty).
        previous = "" if previous == "~" else previous
        pager["prev"] = query_url(page_token=previous or None, trail=".".join(trail[:-1]) or None)
    if next_token:
        pager["next"] = query_url(page_token=next_token, trail=".".join(trail + [current or "~"]))
    return pager


def project_web_url(project: Any) -> str:
    return getattr(project, "web_url", None) or f"{request.script_root}/{project.full_path}"


def tracking_uri(project: Any) -> str:
    """The project's MLflow tracking URI: the API's root (or where it would be, API disabled)."""
    root = endpoint_url(API_BLUEPRINT, "tracking_root", settings().api_prefix, external=True,
                        project_ref=str(project.id))
    return root.removesuffix("/")


def present_user(user_id: Any):
    """``user_presenter``'s view of a user id, cached for the request."""
    if not user_id:
        return None
    cache = g.setdefault("_glml_user_refs", {})
    if user_id not in cache:
        try:
            cache[user_id] = get_state().hook("user_presenter")(user_id)
        except Exception:  # a host bug must not break the page
            current_app.logger.exception("user_presenter failed for %s", user_id)
            cache[user_id] = None
    return cache[user_id]


MLFLOW_SNIPPET = """import os
import mlflow

# This project's tracking URI; the token is a personal access token (api scope).
os.environ["MLFLOW_TRACKING_URI"] = "{uri}"
os.environ["MLFLOW_TRACKING_TOKEN"] = "<your access token>"

mlflow.set_experiment("my-experiment")
with mlflow.start_run():
    mlflow.log_param("learning_rate", 0.01)
    mlflow.log_metric("accuracy", 0.93)
"""


class TemplateHelpers:
    """Exposed to templates as ``glml``."""

    time = staticmethod(fmt_time)
    iso = staticmethod(fmt_iso)
    ago = staticmethod(fmt_ago)
    duration = staticmethod(fmt_duration)
    bytes = staticmethod(fmt_bytes)
    num = staticmethod(fmt_number)
    static = staticmethod(static_url)
    query_url = staticmethod(query_url)
    user = staticmethod(present_user)
    markdown = staticmethod(render_markdown)  # safe: escapes first, see services/markdown_safe
    status_badges = STATUS_BADGES
    csrf_field_name = csrf.FORM_FIELD

    @staticmethod
    def tokens_url() -> Optional[str]:
        """Where the host lets users create access tokens (GL_ML_TRACKING_UI_TOKENS_URL)."""
        return settings().ui_tokens_url

    @staticmethod
    def mlflow_snippet(uri: str) -> str:
        return MLFLOW_SNIPPET.format(uri=uri)

    @staticmethod
    def csrf_token() -> str:
        return csrf.csrf_token()

    @staticmethod
    def url(endpoint: str, **values: Any) -> str:
        return url_for(f"{BP_NAME}.{endpoint}", **values)

    @staticmethod
    def csrf_input() -> Markup:
        # Both parts are ours: a fixed name and a URL-safe base64 token.
        return Markup('<input type="hidden" name="{}" value="{}">').format(csrf.FORM_FIELD, csrf.csrf_token())


def render(template: str, status: int = 200, **context: Any):
    ctx = g.get("glml_page")
    if ctx is not None:
        context.setdefault("page", ctx)
        context.setdefault("project", ctx.project)
        context.setdefault("project_url", project_web_url(ctx.project))
    return render_template(f"gl_ml_tracking/{template}", **context), status


# --------------------------------------------------------------------------- errors and headers
def error_page(status: int, title: str, message: str):
    body, code = render("error.html", status=status, error_title=title, error_message=message)
    return body, code


def page_error(error: MlflowError):
    if isinstance(error, FormRejected):
        return error_page(403, "The form could not be accepted", f"{error.message} Reload the page and try again.")
    if isinstance(error, (ResourceDoesNotExist, PermissionDenied)):
        # GitLab's rule: what you may not read or change is simply not found.
        return error_page(404, "Page not found", "The page you were looking for could not be found.")
    if isinstance(error, InvalidParameter):
        return error_page(400, "The request could not be done", error.message)
    return error_page(error.status, "Something went wrong", error.message)


# Redirects and aborts (the canonical-path redirect, an oversized form) are answers of their own.
PAGES = Surface(render_error=page_error, render_result=_finish, enter=open_page, passthrough=(HTTPException,))


def security_headers(response):
    frame_option = settings().ui_frame_options
    if frame_option:
        response.headers.setdefault("X-Frame-Options", frame_option)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    policy = settings().ui_csp
    if policy and "Content-Security-Policy" not in response.headers:
        ancestors = {"DENY": "'none'", "SAMEORIGIN": "'self'"}.get(str(frame_option).upper())
        if ancestors and "frame-ancestors" not in policy:
            policy = f"{policy}; frame-ancestors {ancestors}"
        response.headers["Content-Security-Policy"] = policy
    return response
