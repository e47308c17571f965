"""A project's webhooks: create, list, get, update, delete and test, with MLflow's
rules (its SQL store, 3.x) and wording; scoped to the project.

Names follow MLflow's pattern (lowercase letters, digits, ``.``, ``_``, ``-``,
1-63 characters); URLs must use an allowed scheme and, unless the host allows the
local network, resolve to public addresses only; a webhook subscribes to at least
one event. Deleting is soft (the delivery history stays); a deleted webhook is
gone for the API and gets no new deliveries.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Optional

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Webhook, WebhookEvent
from ..search.keyset import Atom, Pager, fingerprint
from ..state import get_state
from . import webhook_events as events
from . import webhook_http
from .common import now_ms

TOKEN_KIND = "webhooks"
STATUSES = ("ACTIVE", "DISABLED")
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 5000
_NAME_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_ACTION_NUMBERS = {1: "created", 2: "updated", 3: "deleted", 4: "set", 5: "exceeded"}
_ENTITY_NUMBERS = {n: e for n, e in enumerate(events.EVENT_ACTIONS, start=1)}
_STATUS_NUMBERS = {1: "ACTIVE", 2: "DISABLED"}


# -- validation --------------------------------------------------------------------------------
def _required(value: Any, what: str) -> Any:
    if value is None or value == "":  # protobuf: an empty string is an unset field
        raise InvalidParameter(f"Missing value for required parameter '{what}'. "
                               "See the API docs for more information about request parameters.")
    return value


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidParameter(
            f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, be less than 63 "
            "characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-).")
    return name


def validate_url(url: Any) -> str:
    config = get_state().config
    if isinstance(url, str) and len(url) > MAX_URL_LENGTH:
        raise InvalidParameter(f"Webhook URL exceeds the maximum length of {MAX_URL_LENGTH} characters.")
    webhook_http.check_url(url, schemes=config.webhooks_allowed_schemes, allow_local=config.webhooks_allow_local_network)
    return url


def _enum_name(value: Any, numbers: dict, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return numbers[value]
    if isinstance(value, str) and value:
        return value.lower()
    raise InvalidParameter(f"Invalid value {value!r} for parameter '{what}' supplied.")


def parse_event(raw: Any) -> tuple[str, str]:
    """``{"entity": "MODEL_VERSION", "action": "CREATED"}`` (proto names or numbers,
    as the MLflow client sends them) -> ``("model_version", "created")``."""
    if not isinstance(raw, dict):
        raise InvalidParameter(f"Invalid value {raw!r} for parameter 'events' supplied.")
    entity = _enum_name(raw.get("entity"), _ENTITY_NUMBERS, "events.entity")
    action = _enum_name(raw.get("action"), _ACTION_NUMBERS, "events.action")
    if entity not in events.EVENT_ACTIONS:
        raise InvalidParameter(f"Invalid value {raw.get('entity')!r} for parameter 'events.entity' supplied.")
    if action not in events.ALL_ACTIONS:
        raise InvalidParameter(f"Invalid value {raw.get('action')!r} for parameter 'events.action' supplied.")
    valid = events.EVENT_ACTIONS[entity]
    if action not in valid:
        raise InvalidParameter(f"Invalid action '{action}' for entity '{entity}'. Valid actions are: {sorted(valid)}")
    return entity, action


def parse_events(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidParameter(f"Webhook events must be a non-empty list of WebhookEvent objects: {raw}.")
    parsed = []
    for item in raw:
        event = parse_event(item)
        if event not in parsed:
            parsed.append(event)
    return parsed


def parse_status(raw: Any) -> str:
    status = _enum_name(raw, _STATUS_NUMBERS, "status").upper()
    if status not in STATUSES:
        raise InvalidParameter(f"Invalid value {raw!r} for parameter 'status' supplied.")
    return status


def _description(raw: Any) -> Optional[str]:
    if raw is not None and len(raw) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameter(f"Webhook description exceeds the maximum length of {MAX_DESCRIPTION_LENGTH} characters.")
    return raw


# -- reads ---------------------------------------------------------------------------------------
def get_webhook(session: Session, project_id: str, webhook_id: Any) -> Webhook:
    hook = session.scalars(select(Webhook).where(
        Webhook.project_id == str(project_id), Webhook.webhook_id == str(webhook_id), Webhook.deleted_time.is_(None))
    ).one_or_none()
    if hook is None:
        raise ResourceDoesNotExist(f"Webhook with ID {webhook_id} not found.")
    return hook


def events_of(session: Session, hooks: list[Webhook]) -> dict[int, list[tuple[str, str]]]:
    """Each webhook's events, sorted by entity then action (the order MLflow answers)."""
    found: dict[int, list[tuple[str, str]]] = {h.id: [] for h in hooks}
    if hooks:
        for pk, entity, action in session.execute(select(WebhookEvent.webhook_pk, WebhookEvent.entity, WebhookEvent.action)
                                                  .where(WebhookEvent.webhook_pk.in_(list(found)))):
            found[pk].append((entity, action))
    for pairs in found.values():
        pairs.sort()
    return found


def list_webhooks(session: Session, project_id: str, max_results: Any = None, page_token: Any = None):
    """Newest first, as MLflow; returns (webhooks, next page token or None)."""
    limit = 100 if max_results in (None, 0) else max_results
    if not isinstance(limit, int) or limit < 1 or limit > 1000:
        raise InvalidParameter("max_results must be between 1 and 1000.")
    pager = Pager(TOKEN_KIND, [Atom(Webhook.creation_time, False, False, int), Atom(Webhook.id, False, False, int)],
                  page_token or None, fingerprint("webhooks", str(project_id)), arguments="project")
    stmt = select(Webhook).where(Webhook.project_id == str(project_id), Webhook.deleted_time.is_(None))
    page = pager.fetch(session, stmt, limit)
    return page.items, page.next_cursor


# -- writes --------------------------------------------------------------------------------------
def _set_events(session: Session, hook: Webhook, pairs: list[tuple[str, str]]) -> None:
    session.execute(delete(WebhookEvent).where(WebhookEvent.webhook_pk == hook.id))
    session.add_all(WebhookEvent(webhook_pk=hook.id, entity=e, action=a) for e, a in pairs)


def create_webhook(session: Session, project_id: str, *, name: Any, url: Any, events: Any, description: Any = None,
                   secret: Any = None, status: Any = None) -> Webhook:
    name, url = validate_name(_required(name, "name")), validate_url(_required(url, "url"))
    pairs = parse_events(events)
    now = now_ms()
    hook = Webhook(webhook_id=str(uuid.uuid4()), project_id=str(project_id), name=name, url=url,
                   description=_description(description) or None, secret=secret or None,
                   status=parse_status(status) if status else "ACTIVE", creation_time=now, last_update_time=now)
    session.add(hook)
    session.flush()
    _set_events(session, hook, pairs)
    session.flush()
    return hook


def update_webhook(session: Session, project_id: str, webhook_id: Any, *, name: Any = None, url: Any = None,
                   events: Any = None, description: Any = None, secret: Any = None, status: Any = None) -> Webhook:
    """Only what is given changes (MLflow: an empty name, url or events list is 'not given')."""
    hook = get_webhook(session, project_id, webhook_id)
    if name:
        hook.name = validate_name(name)
    if url:
        hook.url = validate_url(url)
    if events:
        _set_events(session, hook, parse_events(events))
    if description is not None:
        hook.description = _description(description)
    if secret is not None:
        hook.secret = secret
    if status is not None:
        hook.status = parse_status(status)
    hook.last_update_time = now_ms()
    session.flush()
    return hook


def delete_webhook(session: Session, project_id: str, webhook_id: Any) -> None:
    hook = get_webhook(session, project_id, webhook_id)
    hook.deleted_time = hook.last_update_time = now_ms()


def test_webhook(session: Session, project_id: str, webhook_id: Any, event: Any = None) -> dict:
    """Send MLflow's example payload of ``event`` (default: the webhook's first event)
    now, once, and say how it went; nothing is written to the outbox."""
    from .webhook_examples import example_payload

    hook = get_webhook(session, project_id, webhook_id)
    entity, action = parse_event(event) if event else events_of(session, [hook])[hook.id][0]
    config = get_state().config
    body = events.body_json(entity, action, example_payload(entity, action))
    try:
        validate_url(hook.url)
    except InvalidParameter as exc:
        return {"success": False, "error_message": f"Failed to test webhook: {exc.message}"}
    with webhook_http.new_session(config.webhooks_allow_local_network) as http:
        outcome = webhook_http.send(http, hook.url, str(uuid.uuid4()), body, hook.secret, config.webhooks_timeout)
    if outcome.status_code is None:
        return {"success": False, "error_message": f"Failed to test webhook: {outcome.error}"}
    result: dict = {"success": outcome.status_code < 400, "response_status": outcome.status_code}
    if outcome.response_body:
        result["response_body"] = outcome.response_body
    return result
