"""gl-ml-tracking: per-project, MLflow-compatible model experiments for any Flask forge."""
from .extension import MLTracking, get_state
from .hooks import CiJob, CiMergeRequest, CiPipeline, UserRef
from . import signals

__version__ = "0.1.0"

__all__ = ["MLTracking", "get_state", "CiJob", "CiPipeline", "CiMergeRequest", "UserRef", "signals", "__version__"]
