"""The logged models a run used (``runs/log-inputs`` with ``models``), as MLflow's
``inputs`` rows of destination type ``MODEL_INPUT``."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import TABLE_PREFIX, Base, BigId
from .tracking import Run


class RunModelInput(Base):
    """One model id per run. As MLflow, the id is stored as given (it need not name a
    logged model here): only ever shown on the run of this project that logged it."""

    __tablename__ = TABLE_PREFIX + "run_model_inputs"

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey(Run.id, ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
