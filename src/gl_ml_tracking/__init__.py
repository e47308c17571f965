"""gl-ml-tracking: per-project, MLflow-compatible model experiments for any Flask forge."""
from . import signals
from .extension import MLTracking
from .hooks import CiJob, CiMergeRequest, CiPipeline, UserRef
from .state import get_state
from .version import __version__

__all__ = ["MLTracking", "get_state", "CiJob", "CiPipeline", "CiMergeRequest", "UserRef", "signals", "__version__"]
