"""Reading a model's MLmodel (services.model_files.parse_mlmodel) and a metric's
default direction (services.metric_direction): pure functions, checked on the
shapes MLflow writes and on malformed input, which must never raise."""
from __future__ import annotations

import json

import pytest

from gl_ml_tracking.services.metric_direction import directions, lower_is_better
from gl_ml_tracking.services.model_files import parse_mlmodel

COLUMNS = json.dumps([{"type": "double", "name": "x", "required": True},
                      {"type": "string", "name": "tag", "required": False}])
TENSOR = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}])
PARAMS = json.dumps([{"name": "temperature", "type": "double", "default": 0.7, "shape": None}])


def test_column_tensor_and_params_signatures_become_rows():
    text = (f"flavors:\n  python_function: {{}}\nsignature:\n  inputs: '{COLUMNS}'\n  outputs: '{TENSOR}'\n"
            f"  params: '{PARAMS}'\n")
    data, signature = parse_mlmodel(text)
    assert "python_function" in data["flavors"]
    assert [(c.name, c.type, c.required) for c in signature.inputs] == [("x", "double", True), ("tag", "string", False)]
    assert signature.outputs[0].type == "tensor float32 [-1, 28, 28]" and signature.outputs[0].name == "#0"
    assert signature.params[0].name == "temperature" and "default 0.7" in signature.params[0].type


@pytest.mark.parametrize("text", ["", "just text", "- a\n- list", "signature: 3", "signature:\n  inputs: '[not json'",
                                  "signature:\n  inputs: '{\"a\": 1}'", ": : :\n\t- bad yaml [",
                                  "signature:\n  inputs: '[1, 2, null]'", "!!python/object:os.system {}"])
def test_malformed_mlmodel_means_no_signature_never_an_error(text):
    _data, signature = parse_mlmodel(text)
    assert signature is None


@pytest.mark.parametrize("key,lower", [("loss", True), ("val_loss", True), ("train/RMSE", True), ("eval-perplexity", True),
                                       ("mean_absolute_error", True), ("top1_err", True), ("accuracy", False),
                                       ("f1", False), ("auc", False), ("recall", False), ("learning_rate", False)])
def test_loss_like_names_are_better_lower(key, lower):
    assert lower_is_better(key) is lower
    assert directions([key]) == {key: "min" if lower else "max"}
