"""MLflow webhooks endpoints: ``webhooks`` (create, list), ``webhooks/<id>`` (get,
update, delete) and ``webhooks/<id>/test``.

Every one of them, reads included, needs ``admin_model_registry`` besides
``read_model_registry`` (a webhook's URL is for the project's maintainers, as
GitLab's project hooks): a caller who may read the registry but not manage it
gets 403. The secret is never returned.
"""
from __future__ import annotations

from ...hooks import ADMIN_MODEL_REGISTRY, READ_MODEL_REGISTRY
from ...http.pipeline import Access
from ...schemas import webhooks as req
from ...services import webhooks as service
from .framework import ApiContext, Routes

routes = Routes()  # this module's endpoints, gathered by blueprints/api/__init__.py

WEBHOOKS_ADMIN = Access((READ_MODEL_REGISTRY,), (ADMIN_MODEL_REGISTRY,))


def webhook_json(hook, pairs) -> dict:
    out: dict = {"webhook_id": hook.webhook_id, "name": hook.name}
    if hook.description:
        out["description"] = hook.description
    out.update({"url": hook.url, "events": [{"entity": e.upper(), "action": a.upper()} for e, a in pairs],
                "status": hook.status, "creation_timestamp": hook.creation_time,
                "last_updated_timestamp": hook.last_update_time})
    return out


def _one(ctx: ApiContext, hook) -> dict:
    return {"webhook": webhook_json(hook, service.events_of(ctx.session, [hook])[hook.id])}


@routes.route("webhooks", "POST", WEBHOOKS_ADMIN, ajax=True, schema=req.CreateWebhook)
def create_webhook(ctx: ApiContext):
    hook = service.create_webhook(
        ctx.session, ctx.project_id, name=ctx.get("name"), url=ctx.get("url"), events=ctx.get("events"),
        description=ctx.get("description"), secret=ctx.get("secret"), status=ctx.get("status"))
    return _one(ctx, hook)


@routes.route("webhooks", "GET", WEBHOOKS_ADMIN, schema=req.ListWebhooks)
def list_webhooks(ctx: ApiContext):
    hooks, token = service.list_webhooks(ctx.session, ctx.project_id, ctx.get("max_results"), ctx.get("page_token"))
    pairs = service.events_of(ctx.session, hooks)
    out: dict = {"webhooks": [webhook_json(h, pairs[h.id]) for h in hooks]}
    if token:
        out["next_page_token"] = token
    return out


@routes.route("webhooks/<webhook_id>", "GET", WEBHOOKS_ADMIN)
def get_webhook(ctx: ApiContext):
    return _one(ctx, service.get_webhook(ctx.session, ctx.project_id, ctx.get("webhook_id")))


@routes.route("webhooks/<webhook_id>", "PATCH", WEBHOOKS_ADMIN, schema=req.UpdateWebhook)
def update_webhook(ctx: ApiContext):
    hook = service.update_webhook(
        ctx.session, ctx.project_id, ctx.get("webhook_id"), name=ctx.get("name"), url=ctx.get("url"),
        events=ctx.get("events"), description=ctx.args.get("description"), secret=ctx.args.get("secret"),
        status=ctx.get("status"))
    return _one(ctx, hook)


@routes.route("webhooks/<webhook_id>", "DELETE", WEBHOOKS_ADMIN)
def delete_webhook(ctx: ApiContext):
    service.delete_webhook(ctx.session, ctx.project_id, ctx.get("webhook_id"))
    return {}


@routes.route("webhooks/<webhook_id>/test", "POST", WEBHOOKS_ADMIN, schema=req.TestWebhook)
def test_webhook(ctx: ApiContext):
    return {"result": service.test_webhook(ctx.session, ctx.project_id, ctx.get("webhook_id"), ctx.get("event"))}
