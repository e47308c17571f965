"""Page: the project's webhooks and their recent deliveries (status, attempts, last
answer), for the project's maintainers (``admin_model_registry``); others who may
read the registry are told who can see it. A finished delivery can be sent again."""
from __future__ import annotations

from flask import request

from ... import hooks as perms
from ...services import webhook_delivery, webhooks
from .support import PageContext, add_page, done, render

RECENT = 50


def register(bp) -> None:
    add_page(bp, "/ml/webhooks", "webhooks", webhooks_page, read=(perms.READ_MODEL_REGISTRY,))
    add_page(bp, "/ml/webhooks/deliveries/<delivery_id>/redeliver", "webhook_redeliver", redeliver,
             read=(perms.READ_MODEL_REGISTRY,), write=perms.ADMIN_MODEL_REGISTRY)


def webhooks_page(ctx: PageContext):
    if not ctx.can(perms.ADMIN_MODEL_REGISTRY):
        return render("webhooks.html", allowed=False, hooks=[], events={}, deliveries=[], next_token=None)
    hooks, next_token = webhooks.list_webhooks(ctx.session, ctx.project_id, 100, request.args.get("page_token"))
    return render("webhooks.html", allowed=True, hooks=hooks, events=webhooks.events_of(ctx.session, hooks),
                  deliveries=webhook_delivery.recent_deliveries(ctx.session, ctx.project_id, RECENT),
                  next_token=next_token)


def redeliver(ctx: PageContext, delivery_id: str):
    webhook_delivery.redeliver(ctx.session, ctx.project_id, delivery_id)
    return done("The delivery will be sent again.", "webhooks")
