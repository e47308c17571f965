"""SQLAlchemy models of the extension (all tables prefixed ``glml_``)."""
from .base import TABLE_PREFIX, Base
from .model_registry import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    RunOutput,
)
from .packages import Package, PackageFile
from .tracking import (
    ACTIVE,
    DELETED,
    Dataset,
    Experiment,
    ExperimentTag,
    IidCounter,
    LatestMetric,
    Metric,
    Param,
    Run,
    RunInput,
    RunTag,
    VALUE_PREFIX_CHARS,
)

# GenAI evaluation datasets and registered scorers (MLflow 3)
from .genai import EvalDataset, EvalDatasetExperiment, EvalDatasetRecord, EvalDatasetTag, Scorer, ScorerVersion
# issue 16: model inputs of runs
from .run_model_inputs import RunModelInput
# Webhooks and their delivery outbox (issue 16).
from .webhooks import Webhook, WebhookDelivery, WebhookDeliveryAttempt, WebhookEvent  # noqa: E402

metadata = Base.metadata

__all__ = [name for name in dir() if not name.startswith("_")]

# MLflow 3 traces (issue 15)
from .traces import (Assessment, PendingTraceLink, Span, Trace, TraceIssue, TraceMetadata,  # noqa: E402
                     TraceRunLink, TraceTag)

__all__ += ["Assessment", "PendingTraceLink", "Span", "Trace", "TraceIssue", "TraceMetadata", "TraceRunLink",
            "TraceTag"]
