"""The example payload MLflow sends when a webhook is tested, per event."""
from __future__ import annotations

_MODEL = "example_model"
_PROMPT = "example_prompt"
_TAGS = {"example_key": "example_value"}

EXAMPLES: dict[tuple[str, str], dict] = {
    ("registered_model", "created"): {"name": _MODEL, "tags": _TAGS, "description": "An example registered model"},
    ("model_version", "created"): {"name": _MODEL, "version": "1", "source": "models:/123", "run_id": "abcd1234abcd5678",
                                   "tags": _TAGS, "description": "An example model version"},
    ("model_version_tag", "set"): {"name": _MODEL, "version": "1", "key": "example_key", "value": "example_value"},
    ("model_version_tag", "deleted"): {"name": _MODEL, "version": "1", "key": "example_key"},
    ("model_version_alias", "created"): {"name": _MODEL, "alias": "example_alias", "version": "1"},
    ("model_version_alias", "deleted"): {"name": _MODEL, "alias": "example_alias"},
    ("prompt", "created"): {"name": _PROMPT, "tags": _TAGS, "description": "An example prompt"},
    ("prompt_version", "created"): {"name": _PROMPT, "version": "1", "template": "Hello {{name}}!", "tags": _TAGS,
                                    "description": "An example prompt version"},
    ("prompt_tag", "set"): {"name": _PROMPT, "key": "example_key", "value": "example_value"},
    ("prompt_tag", "deleted"): {"name": _PROMPT, "key": "example_key"},
    ("prompt_version_tag", "set"): {"name": _PROMPT, "version": "1", "key": "example_key", "value": "example_value"},
    ("prompt_version_tag", "deleted"): {"name": _PROMPT, "version": "1", "key": "example_key"},
    ("prompt_alias", "created"): {"name": _PROMPT, "alias": "example_alias", "version": "1"},
    ("prompt_alias", "deleted"): {"name": _PROMPT, "alias": "example_alias"},
    ("budget_policy", "exceeded"): {"budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0,
                                    "current_spend": 105.5, "duration_unit": "MONTHS", "duration_value": 1,
                                    "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123",
                                    "window_start": 1704067200000},
}


def example_payload(entity: str, action: str) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in EXAMPLES[(entity, action)].items()}
