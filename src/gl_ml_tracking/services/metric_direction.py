"""Which way a metric improves. Loss-like names (loss, error, mse, perplexity…)
are better lower, everything else higher; the pages let the reader switch a
metric's direction and remember the choice in the browser."""
from __future__ import annotations

import re
from typing import Iterable

# Words that, anywhere in a metric's name, mean "lower is better".
LOWER_IS_BETTER_WORDS = (
    "loss", "error", "err", "mse", "rmse", "mae", "mape", "smape", "msle", "rmsle", "perplexity", "ppl",
    "wer", "cer", "ter", "logloss", "nll", "cross_entropy", "crossentropy", "entropy", "distance", "dist",
    "latency", "time", "duration", "seconds", "regret", "cost", "fpr", "fnr", "miss", "fid", "kl", "divergence",
    "brier", "hinge", "residual", "bits_per", "bpc", "bpd",
)
_SPLIT = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])")
_WORDS = frozenset(LOWER_IS_BETTER_WORDS)


def lower_is_better(key: str) -> bool:
    """``True`` for ``val_loss``, ``train/RMSE``, ``eval-perplexity``, ``mean_absolute_error``."""
    text = (key or "").lower()
    words = [w for w in _SPLIT.split(text) if w]
    if any(w in _WORDS for w in words):
        return True
    # Joined words without separators: "valloss", "trainerror".
    return any(text.endswith(suffix) for suffix in ("loss", "error", "mse", "mae", "perplexity"))


def directions(keys: Iterable[str]) -> dict[str, str]:
    """``{key: "min" | "max"}``: the default direction of each metric."""
    return {key: "min" if lower_is_better(key) else "max" for key in keys}
