"""The filter / order_by parser alone: valid strings and their AST, invalid strings
and their errors, and MLflow's own parser (installed as the test client) as an
oracle over a broad table, with every deliberate difference listed."""
from __future__ import annotations

import math
import random

import pytest

from gl_ml_tracking.errors import InvalidParameter
from gl_ml_tracking.search.grammar import (
    ATTRIBUTE,
    DATASET,
    METRIC,
    PARAM,
    TAG,
    And,
    Comparison,
    Or,
    OrderBy,
    comparisons,
)
from gl_ml_tracking.search.grammars import (
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)

C = Comparison

# --------------------------------------------------------------------------- valid run filters
VALID_RUN_FILTERS = [
    # metrics: numbers of every shape
    ("metrics.acc > 0.9", C(METRIC, "acc", ">", 0.9)),
    ("metric.acc >= 1", C(METRIC, "acc", ">=", 1.0)),
    ("metrics.acc<-1", C(METRIC, "acc", "<", -1.0)),
    ("metrics.acc <= 1e-3", C(METRIC, "acc", "<=", 0.001)),
    ("metrics.acc = 1E5", C(METRIC, "acc", "=", 100000.0)),
    ("metrics.acc != .5", C(METRIC, "acc", "!=", 0.5)),
    ("metrics.acc > 1.", C(METRIC, "acc", ">", 1.0)),
    ("metrics.acc > +2", C(METRIC, "acc", ">", 2.0)),
    ("metrics.acc > -1.5e+3", C(METRIC, "acc", ">", -1500.0)),
    ("metrics.acc > 1e400", C(METRIC, "acc", ">", math.inf)),
    ("metrics.acc > -1e400", C(METRIC, "acc", ">", -math.inf)),
    ("metrics.`my metric` > 0", C(METRIC, "my metric", ">", 0.0)),
    ('metrics."my metric" > 0', C(METRIC, "my metric", ">", 0.0)),
    ("metrics.'my metric' > 0", C(METRIC, "my metric", ">", 0.0)),
    ("metrics.a.b.c > 0", C(METRIC, "a.b.c", ">", 0.0)),
    ("metrics.1a > 0", C(METRIC, "1a", ">", 0.0)),
    ("`metrics`.acc > 0", C(METRIC, "acc", ">", 0.0)),
    ("metrics.`a-b/c:d` > 0", C(METRIC, "a-b/c:d", ">", 0.0)),
    # params and tags
    ("params.lr = '0.01'", C(PARAM, "lr", "=", "0.01")),
    ('param.lr = "0.01"', C(PARAM, "lr", "=", "0.01")),
    ("parameters.lr != ''", C(PARAM, "lr", "!=", "")),
    ("parameter.lr LIKE '0.%'", C(PARAM, "lr", "LIKE", "0.%")),
    ("params.lr like '0.%'", C(PARAM, "lr", "LIKE", "0.%")),
    ("params.lr ILike '0.%'", C(PARAM, "lr", "ILIKE", "0.%")),
    ("params.lr IS NULL", C(PARAM, "lr", "IS NULL", None)),
    ("params.lr is not null", C(PARAM, "lr", "IS NOT NULL", None)),
    ("tags.team = 'vision'", C(TAG, "team", "=", "vision")),
    ("tag.team != 'vision'", C(TAG, "team", "!=", "vision")),
    ("tags.mlflow.runName = 'x'", C(TAG, "mlflow.runName", "=", "x")),
    ('tags."mlflow.runName" = \'x\'', C(TAG, "mlflow.runName", "=", "x")),
    ("tags.`my tag` ILIKE '%A%'", C(TAG, "my tag", "ILIKE", "%A%")),
    ("tags.team IS NOT NULL", C(TAG, "team", "IS NOT NULL", None)),
    ("tags.é = 'ü'", C(TAG, "é", "=", "ü")),
    ("tags.t = 'a b  c'", C(TAG, "t", "=", "a b  c")),
    # quotes: the text between the quotes, unchanged (MLflow's semantics)
    ("tags.t = \"it's\"", C(TAG, "t", "=", "it's")),
    ("tags.t = 'say \"hi\"'", C(TAG, "t", "=", 'say "hi"')),
    ("tags.t = 'it''s'", C(TAG, "t", "=", "it''s")),
    ("tags.t = 'a\\'b'", C(TAG, "t", "=", "a\\'b")),
    ("tags.t = 'a AND b'", C(TAG, "t", "=", "a AND b")),
    ("tags.t = 'x OR (y)'", C(TAG, "t", "=", "x OR (y)")),
    # attributes
    ("attributes.status = 'FINISHED'", C(ATTRIBUTE, "status", "=", "FINISHED")),
    ("attribute.status != 'FAILED'", C(ATTRIBUTE, "status", "!=", "FAILED")),
    ("attr.status LIKE 'F%'", C(ATTRIBUTE, "status", "LIKE", "F%")),
    ("run.status ILIKE 'f%'", C(ATTRIBUTE, "status", "ILIKE", "f%")),
    ("status = 'RUNNING'", C(ATTRIBUTE, "status", "=", "RUNNING")),
    ("`status` = 'RUNNING'", C(ATTRIBUTE, "status", "=", "RUNNING")),
    ("start_time > 5", C(ATTRIBUTE, "start_time", ">", 5)),
    ("start_time >= 5.5", C(ATTRIBUTE, "start_time", ">=", 5.5)),
    ("attributes.start_time < 1e3", C(ATTRIBUTE, "start_time", "<", 1000.0)),
    ("created > 5", C(ATTRIBUTE, "start_time", ">", 5)),
    ("Created != -5", C(ATTRIBUTE, "start_time", "!=", -5)),
    ("end_time <= 10", C(ATTRIBUTE, "end_time", "<=", 10)),
    ("run_name = 'train'", C(ATTRIBUTE, "run_name", "=", "train")),
    ("`Run name` = 'train'", C(ATTRIBUTE, "run_name", "=", "train")),
    ("attributes.`Run Name` LIKE 't%'", C(ATTRIBUTE, "run_name", "LIKE", "t%")),
    ("user_id = 'alice'", C(ATTRIBUTE, "user_id", "=", "alice")),
    ("artifact_uri LIKE '%/3'", C(ATTRIBUTE, "artifact_uri", "LIKE", "%/3")),
    ("lifecycle_stage = 'deleted'", C(ATTRIBUTE, "lifecycle_stage", "=", "deleted")),
    ("run_id = 'abc'", C(ATTRIBUTE, "run_id", "=", "abc")),
    ("run_id IN ('a', 'b')", C(ATTRIBUTE, "run_id", "IN", ("a", "b"))),
    ("attributes.run_id in (\"a\")", C(ATTRIBUTE, "run_id", "IN", ("a",))),
    ("run_id NOT IN ('a','b',)", C(ATTRIBUTE, "run_id", "NOT IN", ("a", "b"))),
    ("run_id not   in ('a')", C(ATTRIBUTE, "run_id", "NOT IN", ("a",))),
    # datasets
    ("datasets.name = 'ds'", C(DATASET, "name", "=", "ds")),
    ("dataset.digest IN ('d1', 'd2')", C(DATASET, "digest", "IN", ("d1", "d2"))),
    ("datasets.context LIKE 'tr%'", C(DATASET, "context", "LIKE", "tr%")),
    ("datasets.context NOT IN ('eval')", C(DATASET, "context", "NOT IN", ("eval",))),
    ("datasets.name ILIKE 'DS'", C(DATASET, "name", "ILIKE", "DS")),
    # conjunctions, MLflow's tolerated stray ANDs
    (
        "metrics.acc > 1 and params.lr = '2' AND tags.t = '3'",
        And((C(METRIC, "acc", ">", 1.0), C(PARAM, "lr", "=", "2"), C(TAG, "t", "=", "3"))),
    ),
    ("params.a='x'AND params.b='y'", And((C(PARAM, "a", "=", "x"), C(PARAM, "b", "=", "y")))),
    ("metrics.acc > 1 AND", C(METRIC, "acc", ">", 1.0)),
    ("AND metrics.acc > 1", C(METRIC, "acc", ">", 1.0)),
    ("metrics.a > 1 AND AND metrics.b > 2", And((C(METRIC, "a", ">", 1.0), C(METRIC, "b", ">", 2.0)))),
    ("  metrics.acc   >   1  ", C(METRIC, "acc", ">", 1.0)),
    ("metrics.acc\t>\n1", C(METRIC, "acc", ">", 1.0)),
    # our extension: OR and parentheses (AND binds tighter)
    ("params.a = 'x' OR params.b = 'y'", Or((C(PARAM, "a", "=", "x"), C(PARAM, "b", "=", "y")))),
    (
        "params.a = 'x' or params.b = 'y' AND params.c = 'z'",
        Or((C(PARAM, "a", "=", "x"), And((C(PARAM, "b", "=", "y"), C(PARAM, "c", "=", "z"))))),
    ),
    (
        "(params.a = 'x' OR params.b = 'y') AND params.c = 'z'",
        And((Or((C(PARAM, "a", "=", "x"), C(PARAM, "b", "=", "y"))), C(PARAM, "c", "=", "z"))),
    ),
    ("((params.a = 'x'))", C(PARAM, "a", "=", "x")),
    (
        "params.a = 'x' AND (params.b = 'y' AND params.c = 'z')",
        And((C(PARAM, "a", "=", "x"), C(PARAM, "b", "=", "y"), C(PARAM, "c", "=", "z"))),
    ),
    (
        "run_id IN ('a') OR (metrics.m < 0 OR tags.t IS NULL)",
        Or((C(ATTRIBUTE, "run_id", "IN", ("a",)), Or((C(METRIC, "m", "<", 0.0), C(TAG, "t", "IS NULL", None))))),
    ),
]


@pytest.mark.parametrize("text,expected", VALID_RUN_FILTERS, ids=[c[0] for c in VALID_RUN_FILTERS])
def test_valid_run_filter(text, expected):
    assert parse_run_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_filter_is_no_filter(text):
    assert parse_run_filter(text) is None
    assert parse_experiment_filter(text) is None


# --------------------------------------------------------------------------- invalid run filters
INVALID_RUN_FILTERS = [
    # (filter, a fragment the message must contain: it names the bad token)
    ("metrics.acc", "expected a comparator"),
    ("metrics.acc >", "expected a value, found end of input"),
    ("metrics.acc > 'a'", "expected a number for metric 'metrics.acc'"),
    ("metrics.acc = abc", "found 'abc'"),
    ("metrics.acc = NaN", "found 'NaN'"),
    ("metrics.acc > - 1", "found '-'"),
    ("metrics.acc > 1a", "invalid number '1a'"),
    ("metrics.acc > 1.5.5", "invalid number '1.5.5'"),
    ("metrics.acc > 0x10", "invalid number '0x10'"),
    ("metrics.acc LIKE '1'", "invalid comparator 'LIKE' for metric"),
    ("metrics.acc IS NULL", "invalid comparator 'IS NULL' for metric"),
    ("metrics.acc IN ('1')", "invalid comparator 'IN' for metric"),
    ("metrics.acc == 1", "invalid comparator '=='"),
    ("metrics.acc <> 1", "invalid comparator '<>'"),
    ("metrics.acc => 1", "expected a value"),
    ("params.lr > '1'", "invalid comparator '>' for 'params.lr'"),
    ("params.lr = 1", "expected a quoted string for 'params.lr'"),
    ("params.lr = abc", "found 'abc'"),
    ("params.lr = `abc`", "found '`abc`'"),
    ("params.lr IN ('a')", "invalid comparator 'IN' for 'params.lr'"),
    ("tags.t NOT IN ('a')", "invalid comparator 'NOT IN' for 'tags.t'"),
    ("tags.t IS 'x'", "expected NULL or NOT NULL after IS"),
    ("tags.t IS NOT 'x'", "expected NULL or NOT NULL after IS"),
    ("tags.t NOT LIKE 'x'", "expected IN after NOT"),
    ("tags.a-b = 'x'", "unexpected '-' in identifier"),
    ("tags.a:b = 'x'", "unexpected ':' in identifier"),
    ("tags.`a`.b = 'x'", "unexpected '.' in identifier"),
    ("tags.t = 'unterminated", "unterminated string"),
    ("tags.`t = 'x'", "unterminated backtick-quoted key"),
    ("params. = 'a'", "empty key after 'params.'"),
    ("params.`` = 'a'", "empty key after 'params.'"),
    ("foo.x = 1", "invalid entity type 'foo'"),
    ("METRICS.x = 1", "invalid entity type 'METRICS'"),
    ('"params".x = \'a\'', "invalid entity type"),
    ("x = 1", "invalid attribute key 'x'"),
    ("experiment_id = '1'", "invalid attribute key 'experiment_id'"),
    ("run name = 'x'", "invalid attribute key 'run'"),
    ("start_time > '5'", "expected a number for numeric attribute 'start_time'"),
    ("start_time LIKE '5'", "invalid comparator 'LIKE' for numeric attribute 'start_time'"),
    ("end_time IN ('5')", "invalid comparator 'IN' for numeric attribute"),
    ("status > 'a'", "invalid comparator '>' for 'status'"),
    ("status = 5", "expected a quoted string for 'status'"),
    ("status IS NULL", "IS NULL / IS NOT NULL is only supported for params and tags"),
    ("status IN ('A')", "IN is only supported for run_id and dataset fields"),
    ("run_id IN 'a'", "expected a ('list', 'of', 'strings') after IN"),
    ("run_id IN ()", "non-empty list"),
    ("run_id IN ('a', 1)", "a list may only hold quoted strings, found '1'"),
    ("run_id IN ('a' 'b')", "expected ',' or ')' in list"),
    ("run_id IN ('a'", "expected ',' or ')' in list"),
    ("run_id IN ('a',", "unterminated list"),
    ("run_id = ('a')", "needs IN or NOT IN"),
    ("datasets.foo = 'x'", "invalid dataset key 'foo'"),
    ("datasets.name > 'x'", "invalid comparator '>' for 'datasets.name'"),
    ("datasets.name IS NULL", "IS NULL / IS NOT NULL is only supported for params and tags"),
    ("datasets.name = 1", "expected a quoted string"),
    # structure
    ("metrics.a = 1 metrics.b = 2", "expected AND or OR, found 'metrics.b'"),
    ("metrics.a = 1 ; metrics.b = 2", "expected AND or OR, found ';'"),
    ("metrics.a = 1 -- comment", "expected AND or OR, found '-'"),
    ("metrics.a = 1 AND OR metrics.b = 2", "AND must be followed by a condition"),
    ("metrics.a = 1 OR", "OR must be followed by a condition"),
    ("OR metrics.a = 1", "expected a condition, found 'OR'"),
    ("AND", "AND must be followed by a condition"),
    ("metrics.a = 1 OR OR metrics.b = 1", "expected a condition, found 'OR'"),
    ("(metrics.a = 1", "missing ')'"),
    ("metrics.a = 1)", "unbalanced ')'"),
    ("()", "expected a condition, found ')'"),
    ("(metrics.a = 1 AND)", "AND must be followed by a condition"),
    ("metrics.a = 1 ANDmetrics.b = 2", "expected AND or OR, found 'ANDmetrics.b'"),
    ("NOT metrics.a = 1", "invalid attribute key 'NOT'"),
    ("'metrics.a' = 1", "expected an identifier"),
    ("= 1", "expected an identifier"),
    ("(" * 40 + "metrics.a = 1" + ")" * 40, "nested too deeply"),
]


@pytest.mark.parametrize("text,fragment", INVALID_RUN_FILTERS, ids=[c[0][:60] for c in INVALID_RUN_FILTERS])
def test_invalid_run_filter(text, fragment):
    with pytest.raises(InvalidParameter) as err:
        parse_run_filter(text)
    assert fragment in err.value.message, err.value.message
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and err.value.status == 400
    assert repr(text)[:20] in err.value.message  # the message quotes the filter


@pytest.mark.parametrize("value", [5, 1.5, b"metrics.a > 1", ["metrics.a > 1"], {"a": 1}])
def test_non_string_filter(value):
    with pytest.raises(InvalidParameter):
        parse_run_filter(value)
    with pytest.raises(InvalidParameter):
        parse_experiment_filter(value)


def test_comparisons_walks_the_tree():
    node = parse_run_filter("(metrics.a > 1 OR params.b = 'x') AND tags.c IS NULL")
    assert [c.key for c in comparisons(node)] == ["a", "b", "c"]
    assert list(comparisons(None)) == []


# --------------------------------------------------------------------------- experiment filters
VALID_EXPERIMENT_FILTERS = [
    ("name = 'exp'", C(ATTRIBUTE, "name", "=", "exp")),
    ("attribute.name != 'exp'", C(ATTRIBUTE, "name", "!=", "exp")),
    ("attributes.name LIKE 'e%'", C(ATTRIBUTE, "name", "LIKE", "e%")),
    ("attr.name ILIKE 'E%'", C(ATTRIBUTE, "name", "ILIKE", "E%")),
    ("`name` = 'x'", C(ATTRIBUTE, "name", "=", "x")),
    ("creation_time > 5", C(ATTRIBUTE, "creation_time", ">", 5)),
    ("last_update_time <= -1", C(ATTRIBUTE, "last_update_time", "<=", -1)),
    ("experiment_id = '3'", C(ATTRIBUTE, "experiment_id", "=", 3)),
    ("experiment_id != '3'", C(ATTRIBUTE, "experiment_id", "!=", 3)),
    ("experiment_id IN ('1', '2')", C(ATTRIBUTE, "experiment_id", "IN", (1, 2))),
    ("experiment_id NOT IN ('1')", C(ATTRIBUTE, "experiment_id", "NOT IN", (1,))),
    ("tags.team = 'vision'", C(TAG, "team", "=", "vision")),
    ("tag.`my tag` LIKE '%'", C(TAG, "my tag", "LIKE", "%")),
    ("tags.team IS NULL", C(TAG, "team", "IS NULL", None)),
    ("tags.team IS NOT NULL", C(TAG, "team", "IS NOT NULL", None)),
    ("name = 'a' AND tags.t = 'b'", And((C(ATTRIBUTE, "name", "=", "a"), C(TAG, "t", "=", "b")))),
    ("name = 'a' OR tags.t = 'b'", Or((C(ATTRIBUTE, "name", "=", "a"), C(TAG, "t", "=", "b")))),
]

INVALID_EXPERIMENT_FILTERS = [
    ("params.x = 'a'", "invalid entity type 'params'"),
    ("metrics.x > 1", "invalid entity type 'metrics'"),
    ("datasets.name = 'x'", "invalid entity type 'datasets'"),
    ("lifecycle_stage = 'active'", "invalid attribute key 'lifecycle_stage'"),
    ("status = 'x'", "invalid attribute key 'status'"),
    ("name IS NULL", "only supported for tags"),
    ("name IN ('a')", "only supported for experiment_id"),
    ("name > 'a'", "invalid comparator '>' for 'name'"),
    ("name = 1", "expected a quoted string for 'name'"),
    ("creation_time > 5.5", "expected an integer for 'creation_time'"),
    ("creation_time > 1e3", "expected an integer for 'creation_time'"),
    ("creation_time > '5'", "expected a number for numeric attribute 'creation_time'"),
    ("creation_time LIKE '5'", "invalid comparator 'LIKE' for numeric attribute"),
    ("experiment_id = 1", "expected a quoted experiment id"),
    ("experiment_id = 'abc'", "invalid experiment id 'abc'"),
    ("experiment_id IN ('1', 'x')", "invalid experiment id 'x'"),
    ("experiment_id > '1'", "invalid comparator '>' for 'experiment_id'"),
    ("experiment_id LIKE '1'", "invalid comparator 'LIKE' for 'experiment_id'"),
    ("tags.t > 'a'", "invalid comparator '>' for 'tags.t'"),
    ("tags.t IN ('a')", "invalid comparator 'IN' for 'tags.t'"),
    ("tags.t = 5", "expected a quoted string"),
]


@pytest.mark.parametrize("text,expected", VALID_EXPERIMENT_FILTERS, ids=[c[0] for c in VALID_EXPERIMENT_FILTERS])
def test_valid_experiment_filter(text, expected):
    assert parse_experiment_filter(text) == expected


@pytest.mark.parametrize("text,fragment", INVALID_EXPERIMENT_FILTERS, ids=[c[0] for c in INVALID_EXPERIMENT_FILTERS])
def test_invalid_experiment_filter(text, fragment):
    with pytest.raises(InvalidParameter) as err:
        parse_experiment_filter(text)
    assert fragment in err.value.message, err.value.message


# --------------------------------------------------------------------------- order_by
VALID_RUN_ORDER = [
    ("metrics.acc DESC", OrderBy(METRIC, "acc", False)),
    ("metrics.acc", OrderBy(METRIC, "acc", True)),
    ("metric.acc asc", OrderBy(METRIC, "acc", True)),
    ("metrics.`my key` desc", OrderBy(METRIC, "my key", False)),
    ('metrics."my key" Desc', OrderBy(METRIC, "my key", False)),
    ("metrics.a.b", OrderBy(METRIC, "a.b", True)),
    ("params.lr", OrderBy(PARAM, "lr", True)),
    ("param.lr DESC", OrderBy(PARAM, "lr", False)),
    ("tags.`a b` ASC", OrderBy(TAG, "a b", True)),
    ("tags.mlflow.runName", OrderBy(TAG, "mlflow.runName", True)),
    ("attributes.start_time", OrderBy(ATTRIBUTE, "start_time", True)),
    ("start_time ASC", OrderBy(ATTRIBUTE, "start_time", True)),
    ("created DESC", OrderBy(ATTRIBUTE, "start_time", False)),
    ("Created", OrderBy(ATTRIBUTE, "start_time", True)),
    ("end_time", OrderBy(ATTRIBUTE, "end_time", True)),
    ("run_name", OrderBy(ATTRIBUTE, "run_name", True)),
    ("attr.status DESC", OrderBy(ATTRIBUTE, "status", False)),
    ("run_id", OrderBy(ATTRIBUTE, "run_id", True)),
    ("user_id", OrderBy(ATTRIBUTE, "user_id", True)),
    ("artifact_uri", OrderBy(ATTRIBUTE, "artifact_uri", True)),
    ("lifecycle_stage", OrderBy(ATTRIBUTE, "lifecycle_stage", True)),
    ("`metrics`.acc", OrderBy(METRIC, "acc", True)),
    ("  metrics.acc   DESC  ", OrderBy(METRIC, "acc", False)),
    ("metrics.acc\tdesc", OrderBy(METRIC, "acc", False)),
]

INVALID_RUN_ORDER = [
    ("", "empty clause"),
    ("metrics.acc DESC ASC", "unexpected 'ASC' after DESC"),
    ("metrics.acc dsc", "expected ASC or DESC, found 'dsc'"),
    ("metrics.acc, params.b", "expected ASC or DESC, found ','"),
    ("metrics.", "empty key"),
    ("foo.x", "invalid entity type 'foo'"),
    ("timestamp", "invalid attribute key 'timestamp'"),
    ("experiment_id", "invalid attribute key 'experiment_id'"),
    ("datasets.name", "cannot be ordered by dataset"),
    ("metrics.a-b", "unexpected '-' in identifier"),
    ("metrics.acc > 1", "expected ASC or DESC"),
]


@pytest.mark.parametrize("text,expected", VALID_RUN_ORDER, ids=[c[0] for c in VALID_RUN_ORDER])
def test_valid_run_order_by(text, expected):
    assert parse_run_order_by([text]) == [expected]


@pytest.mark.parametrize("text,fragment", INVALID_RUN_ORDER, ids=[c[0] or "empty" for c in INVALID_RUN_ORDER])
def test_invalid_run_order_by(text, fragment):
    with pytest.raises(InvalidParameter) as err:
        parse_run_order_by([text])
    assert fragment in err.value.message, err.value.message


def test_order_by_lists():
    assert parse_run_order_by(None) == [] and parse_run_order_by([]) == []
    assert parse_run_order_by(["metrics.a DESC", "params.b", "start_time"]) == [
        OrderBy(METRIC, "a", False),
        OrderBy(PARAM, "b", True),
        OrderBy(ATTRIBUTE, "start_time", True),
    ]
    # the same field twice (aliases included) is refused, as MLflow does
    for dup in (["metrics.a", "metrics.a DESC"], ["start_time", "created DESC"], ["tags.x", "tag.x"]):
        with pytest.raises(InvalidParameter, match="same field twice"):
            parse_run_order_by(dup)
    # a metric and a param of the same key are different fields
    assert len(parse_run_order_by(["metrics.a", "params.a"])) == 2
    with pytest.raises(InvalidParameter):
        parse_run_order_by([5])


def test_experiment_order_by():
    assert parse_experiment_order_by(["name", "creation_time DESC", "attribute.experiment_id asc"]) == [
        OrderBy(ATTRIBUTE, "name", True),
        OrderBy(ATTRIBUTE, "creation_time", False),
        OrderBy(ATTRIBUTE, "experiment_id", True),
    ]
    assert parse_experiment_order_by(["last_update_time"]) == [OrderBy(ATTRIBUTE, "last_update_time", True)]
    for bad, fragment in [
        ("tags.x", "can only be ordered by"),
        ("metrics.x", "invalid entity type"),
        ("start_time", "invalid attribute key"),
        ("name down", "expected ASC or DESC"),
    ]:
        with pytest.raises(InvalidParameter) as err:
            parse_experiment_order_by([bad])
        assert fragment in err.value.message


# --------------------------------------------------------------------------- robustness
_PIECES = [
    "metrics.a", "params.b", "tags.`c d`", "attributes.status", "start_time", "run_id", "datasets.name",
    "=", "!=", "<", ">=", "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL", "AND", "OR", "(", ")", ",",
    "'x'", '"y"', "'", '"', "`", "1", "-2.5e3", "1e999", ".", "..", "\\", "%", "_", "é", "\x00", " ", "\n",
    "('a', 'b')", "==", "<>", "--", ";", "*",
]


def test_random_input_only_ever_raises_invalid_parameter():
    rnd = random.Random(20240601)
    for _ in range(4000):
        text = " ".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 12)))
        for parse in (parse_run_filter, parse_experiment_filter):
            try:
                parse(text)
            except InvalidParameter:
                pass
        try:
            parse_run_order_by([text])
        except InvalidParameter:
            pass
        try:
            parse_experiment_order_by([text])
        except InvalidParameter:
            pass


def test_long_filters_parse():
    text = " AND ".join(f"metrics.m{i} > {i}" for i in range(500))
    assert len(parse_run_filter(text).items) == 500
    text = " OR ".join(f"(params.p{i} = 'v' AND tags.t{i} IS NULL)" for i in range(200))
    assert len(parse_run_filter(text).items) == 200


# --------------------------------------------------------------------------- MLflow as oracle
search_utils = pytest.importorskip("mlflow.utils.search_utils")

ORACLE_RUN_FILTERS = [c[0] for c in VALID_RUN_FILTERS] + [c[0] for c in INVALID_RUN_FILTERS] + [
    "metrics.x > 1 AND params.y = 'z'",
    "tags.`a b` != 'c' and datasets.digest = 'd'",
    "run_id IN ('a', \"b\")",
    "params.x = 'a%' AND attributes.user_id ILIKE 'A%'",
]

# Strings where we deliberately differ from MLflow 3.17's parser + SQL store.
MLFLOW_DIFFERENCES = {
    # we accept, MLflow refuses: extensions
    "metrics.acc > +2": "signed numbers",
    "metrics.acc > -1.5e+3": "exponent with a sign",
    "lifecycle_stage = 'deleted'": "lifecycle_stage is searchable here",
    "params.a = 'x' OR params.b = 'y'": "OR",
    "params.a = 'x' or params.b = 'y' AND params.c = 'z'": "OR",
    "(params.a = 'x' OR params.b = 'y') AND params.c = 'z'": "OR and parentheses",
    "((params.a = 'x'))": "parentheses",
    "params.a = 'x' AND (params.b = 'y' AND params.c = 'z')": "parentheses",
    "run_id IN ('a') OR (metrics.m < 0 OR tags.t IS NULL)": "OR and parentheses",
    # MLflow accepts by accident, we refuse with a clear message
    "metrics.a = 1 metrics.b = 2": "MLflow ANDs juxtaposed comparisons silently",
    "tags.`a`.b = 'x'": "MLflow reads the key as '`a`.b'",
    "params. = 'a'": "empty key",
    "params.`` = 'a'": "empty key",
    "run_id IN ('a' 'b')": "MLflow concatenates adjacent strings in a list (Python literal)",
    "run_id = ('a')": "MLflow's parser lets a list follow '=', its store then fails in the database",
    "AND": "MLflow reads a lone AND as no filter",
}


def _mlflow_run_filter(text):
    """MLflow's parser followed by its SQL store's checks, normalised like our AST."""
    S = search_utils.SearchUtils
    try:
        out = []
        for clause in S.parse_search_filter(text):
            kind, op, value = clause["type"], clause["comparator"].upper(), clause["value"]
            key = S.translate_key_alias(clause["key"])
            ok = (
                S.is_metric(kind, op)
                or S.is_param(kind, op)
                or S.is_tag(kind, op)
                or S.is_string_attribute(kind, key, op)
                or S.is_numeric_attribute(kind, key, op)
                or S.is_dataset(kind, op)
            )
            if not ok:
                return "error"
            if kind == METRIC:
                value = float(value)
            if isinstance(value, list):
                value = tuple(value)
            out.append(Comparison(kind, key, op, value))
        return out
    except Exception:  # noqa: BLE001 - any MLflow refusal
        return "error"


def _ours(parse, text):
    try:
        node = parse(text)
    except InvalidParameter:
        return "error"
    if isinstance(node, Or):
        return "or"
    return list(comparisons(node))


@pytest.mark.parametrize("text", ORACLE_RUN_FILTERS, ids=[t[:60] for t in ORACLE_RUN_FILTERS])
def test_run_filter_matches_mlflow(text):
    ours = _ours(parse_run_filter, text)
    theirs = _mlflow_run_filter(text)
    if text in MLFLOW_DIFFERENCES:
        assert ours != theirs, f"listed as a difference but both give {ours!r}"
    else:
        assert ours == theirs


ORACLE_EXPERIMENT_FILTERS = [c[0] for c in VALID_EXPERIMENT_FILTERS] + [c[0] for c in INVALID_EXPERIMENT_FILTERS]
EXPERIMENT_DIFFERENCES = {
    "attributes.name LIKE 'e%'": "attributes. prefix accepted for experiments",
    "attr.name ILIKE 'E%'": "attr. prefix accepted for experiments",
    "name = 'a' OR tags.t = 'b'": "OR",
}


def _mlflow_experiment_filter(text):
    """MLflow's experiment parser plus the checks of its SQL store."""
    E = search_utils.SearchExperimentsUtils
    try:
        out = []
        for clause in E.parse_search_filter(text):
            kind, key, op, value = clause["type"], clause["key"], clause["comparator"].upper(), clause["value"]
            if kind == ATTRIBUTE:
                if key == "experiment_id":
                    if op not in ("=", "!=", "IN", "NOT IN"):
                        return "error"
                    value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
                elif key in ("creation_time", "last_update_time"):
                    if op not in ("=", "!=", "<", "<=", ">", ">=") or isinstance(value, float):
                        return "error"
                    value = int(value)
                elif op not in ("=", "!=", "LIKE", "ILIKE"):
                    return "error"
            elif kind == TAG and op not in ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"):
                return "error"
            out.append(Comparison(kind, key, op, value))
        return out
    except Exception:  # noqa: BLE001
        return "error"


@pytest.mark.parametrize("text", ORACLE_EXPERIMENT_FILTERS, ids=ORACLE_EXPERIMENT_FILTERS)
def test_experiment_filter_matches_mlflow(text):
    ours = _ours(parse_experiment_filter, text)
    theirs = _mlflow_experiment_filter(text)
    if text in EXPERIMENT_DIFFERENCES:
        assert ours != theirs
    else:
        assert ours == theirs


ORDER_DIFFERENCES = {
    "lifecycle_stage": "orderable here",
    "  metrics.acc   DESC  ": "surrounding blanks tolerated",
    "datasets.name": "MLflow's parser accepts it, its store then fails",
}


@pytest.mark.parametrize(
    "text", [c[0] for c in VALID_RUN_ORDER] + [c[0] for c in INVALID_RUN_ORDER], ids=lambda t: t or "empty"
)
def test_run_order_by_matches_mlflow(text):
    try:
        ob = parse_run_order_by([text])[0]
        ours = (ob.kind, ob.key, ob.ascending)
    except InvalidParameter:
        ours = "error"
    S = search_utils.SearchUtils
    try:
        kind, key, asc = S.parse_order_by_for_search_runs(text)
        theirs = (kind, S.translate_key_alias(key), asc) if key else "error"
    except Exception:  # noqa: BLE001
        theirs = "error"
    if text in ORDER_DIFFERENCES:
        assert ours != theirs
    else:
        assert ours == theirs
