"""The records of a GenAI evaluation dataset: upsert (merged by their inputs, as
MLflow's store does), paged reads, deletes; and what the dataset derives from them
(its schema, profile and digest).

Upserts are set-based: one read of the records whose inputs are already there, one
multi-row insert of the new ones, one update per merged record.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Optional

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import EvalDataset, EvalDatasetRecord
from ..search.keyset import Atom, Pager, fingerprint
from . import datasets
from . import validation as v
from .common import now_ms

__all__ = ["SOURCE_TYPES", "READ_DEFAULT_MAX_RESULTS", "READ_MAX_RESULTS", "TOKEN_KIND", "upsert_records",
           "read_records", "delete_records", "records_json_text", "infer_type", "record_id"]

SOURCE_TYPES = ("UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE")
READ_DEFAULT_MAX_RESULTS, READ_MAX_RESULTS = 1000, 50_000
TOKEN_KIND = "eval-dataset-records"
MAX_RECORDS_PER_UPSERT = 50_000
_CHUNK = 500  # ids per IN (...): far below SQLite's bound-parameter limit


def infer_type(value: Any) -> str:
    """A value's type name in a dataset's schema (MLflow's names)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
                       (dict, "object")):
        if isinstance(value, kind):
            return name
    return "unknown"  # pragma: no cover - JSON has no other types


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def _optional_object(record: dict, name: str, index: int) -> Optional[dict]:
    value = record.get(name)
    if value is not None and not isinstance(value, dict):
        raise InvalidParameter(f"Invalid record {index}: '{name}' must be a JSON object.")
    return value


def _source(record: dict, index: int) -> tuple[Optional[dict], Optional[str], Optional[str]]:
    """(source as stored, its source id, its type) of a record."""
    source = record.get("source")
    if not source:
        return None, None, None
    if not isinstance(source, dict) or not isinstance(source.get("source_type", ""), str):
        raise InvalidParameter(f"Invalid record {index}: 'source' must be an object with a 'source_type'.")
    kind = (source.get("source_type") or "").upper()
    if kind not in SOURCE_TYPES:
        raise InvalidParameter(f"Invalid dataset record source type: {kind[:40]}. Valid source types: {list(SOURCE_TYPES)}")
    data = source.get("source_data") or {}
    if not isinstance(data, dict):
        raise InvalidParameter(f"Invalid record {index}: 'source_data' must be a JSON object.")
    source_id = data.get("trace_id") if kind == "TRACE" else data.get("source_id")
    source_id = datasets.no_nul(str(source_id)[:255], "a source id") if source_id is not None else None
    return {"source_type": kind, "source_data": data}, source_id, kind


def _parse_records(records: Any) -> list[dict]:
    if isinstance(records, str):
        try:
            records = json.loads(records)
        except (ValueError, RecursionError):
            raise InvalidParameter("Invalid value for parameter 'records' supplied: malformed JSON.") from None
    if not isinstance(records, list):
        raise InvalidParameter("Invalid value for parameter 'records' supplied: expected a JSON list of records.")
    if len(records) > MAX_RECORDS_PER_UPSERT:
        raise InvalidParameter(f"At most {MAX_RECORDS_PER_UPSERT} records can be upserted at once, got {len(records)}.")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidParameter(f"Invalid record {index}: expected a JSON object.")
        if not isinstance(record.get("inputs", {}), dict):
            raise InvalidParameter(f"Invalid record {index}: 'inputs' must be a JSON object.")
        for name in ("expectations", "tags"):
            _optional_object(record, name, index)
    return records


def _user(tags: Optional[dict]) -> Optional[str]:
    if tags and tags.get(datasets.USER_TAG) is not None:
        return datasets.no_nul(str(tags[datasets.USER_TAG])[:255], "the mlflow.user tag")
    return None


def _merge(row: dict, record: dict, now: int) -> None:
    """MLflow's merge: outputs replaced when sent, expectations and tags updated key by key."""
    if "outputs" in record:
        row["outputs"] = None if record["outputs"] is None else _dumps(record["outputs"])
    for name in ("expectations", "tags"):
        new = record.get(name)
        if new:
            current = json.loads(row[name]) if row.get(name) else {}
            current.update(new)
            row[name] = _dumps(current)
    row["last_update_time"] = now
    user = _user(record.get("tags"))
    if user is not None:
        row["last_updated_by"] = user


def record_id(now: int, index: int) -> str:
    """``dr-<32 hex>`` as MLflow's, time-ordered: the milliseconds, the record's place in
    its batch, then randomness. Records are read in (created time, id) order, so the
    records of one upsert come back in the order they were sent (MLflow's random ids
    shuffle them)."""
    return f"dr-{now:012x}{index:08x}{uuid.uuid4().hex[:12]}"


def _new_row(dataset: EvalDataset, input_hash: str, record: dict, index: int, now: int) -> dict:
    source, source_id, source_type = _source(record, index)
    tags = record.get("tags") or {}
    outputs = record.get("outputs", {})
    user = _user(tags)
    return {
        "record_id": record_id(now, index), "dataset_pk": dataset.id, "input_hash": input_hash,
        "inputs": _dumps(record.get("inputs", {})), "outputs": None if outputs is None else _dumps(outputs),
        "expectations": None if record.get("expectations") is None else _dumps(record["expectations"]),
        "tags": _dumps(tags), "source": None if source is None else _dumps(source), "source_id": source_id,
        "source_type": source_type, "created_by": user, "last_updated_by": user,
        "creation_time": now, "last_update_time": now,
    }


_MERGED = ("outputs", "expectations", "tags", "last_update_time", "last_updated_by")


def _update_schema(existing: Optional[str], records: list[dict]) -> Optional[dict]:
    if not records and not existing:
        return None
    schema = json.loads(existing) if existing else {"inputs": {}, "outputs": {}, "expectations": {}, "version": "1.0"}
    for record in records:
        for key, value in (record.get("inputs") or {}).items():
            schema["inputs"].setdefault(key, infer_type(value))
        outputs = record.get("outputs")
        if isinstance(outputs, dict):
            for key, value in outputs.items():
                if isinstance(schema["outputs"], dict):
                    schema["outputs"].setdefault(key, infer_type(value))
        elif outputs is not None and not schema["outputs"]:
            schema["outputs"] = infer_type(outputs)
        for key, value in (record.get("expectations") or {}).items():
            schema["expectations"].setdefault(key, infer_type(value))
    return schema


def upsert_records(session: Session, project_id: str, dataset_id: Any, records: Any) -> tuple[int, int]:
    """(inserted, updated): a record whose inputs the dataset already has is merged into it.
    Concurrent upserts into one dataset run one after the other (its row is locked), so
    none loses a merge or trips over a record another one just inserted."""
    dataset = datasets.get_dataset(session, project_id, dataset_id, lock=True)
    records = _parse_records(records)
    now = now_ms()
    try:
        hashes = [hashlib.sha256(json.dumps(r.get("inputs", {}), sort_keys=True, allow_nan=False).encode())
                  .hexdigest() for r in records]
    except ValueError:
        raise InvalidParameter("Invalid record: NaN and infinity are not JSON values.") from None
    existing: dict[str, dict] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), _CHUNK):
        rows = session.execute(select(EvalDatasetRecord.id, EvalDatasetRecord.input_hash,
                                      *[getattr(EvalDatasetRecord, n) for n in _MERGED])
                               .where(EvalDatasetRecord.dataset_pk == dataset.id,
                                      EvalDatasetRecord.input_hash.in_(unique[start:start + _CHUNK])))
        for row in rows:
            existing[row.input_hash] = {"id": row.id, **{name: getattr(row, name) for name in _MERGED}}
    new: dict[str, dict] = {}
    merged: dict[str, dict] = {}
    inserted = updated = 0
    updated_by = None
    try:
        for index, (record, input_hash) in enumerate(zip(records, hashes)):
            updated_by = _user(record.get("tags")) or updated_by
            if input_hash in existing or input_hash in new:
                row = existing.get(input_hash) or new[input_hash]
                _merge(row, record, now)
                if input_hash in existing:
                    merged[input_hash] = row
                updated += 1
            else:
                new[input_hash] = _new_row(dataset, input_hash, record, index, now)
                inserted += 1
    except ValueError:
        raise InvalidParameter("Invalid record: NaN and infinity are not JSON values.") from None
    if new:
        session.execute(insert(EvalDatasetRecord), list(new.values()))
    if merged:  # one executemany: an UPDATE by primary key per merged record
        session.execute(update(EvalDatasetRecord), list(merged.values()))
    schema = _update_schema(dataset.schema, records)
    count = datasets.count_records(session, dataset)
    if schema:
        dataset.schema = json.dumps(schema)
    if count:
        dataset.profile = json.dumps({"num_records": count})
    dataset.last_update_time = now
    dataset.last_updated_by = updated_by
    dataset.digest = datasets.compute_digest(dataset.name, now)
    session.flush()
    return inserted, updated


def _limit(value: Any) -> int:
    limit = v.parse_int(value, "max_results", default=READ_DEFAULT_MAX_RESULTS) or READ_DEFAULT_MAX_RESULTS
    if limit < 1 or limit > READ_MAX_RESULTS:
        raise InvalidParameter(f"Invalid value {value} for parameter 'max_results' supplied: it must be between 1 "
                               f"and {READ_MAX_RESULTS}.")
    return limit


def read_records(session: Session, project_id: str, dataset_id: Any, *, max_results: Any = None,
                 page_token: Any = None) -> tuple[list[EvalDatasetRecord], Optional[str]]:
    """One page of the records, in MLflow's order (created time, then record id)."""
    dataset = datasets.get_dataset(session, project_id, dataset_id)
    limit = _limit(max_results)
    atoms = [Atom(EvalDatasetRecord.creation_time, True, False, int),
             Atom(EvalDatasetRecord.record_id, True, False, str)]
    token = v.require_str(page_token, "page_token") if page_token else None
    pager = Pager(TOKEN_KIND, atoms, token, fingerprint("eval_dataset_records", dataset.dataset_id),
                  arguments="dataset")
    page = pager.fetch(session, select(EvalDatasetRecord).where(EvalDatasetRecord.dataset_pk == dataset.id), limit)
    return page.items, page.next_cursor


def delete_records(session: Session, project_id: str, dataset_id: Any, record_ids: Any) -> int:
    dataset = datasets.get_dataset(session, project_id, dataset_id, lock=True)
    ids = [str(i) for i in record_ids or []]
    deleted = 0
    for start in range(0, len(ids), _CHUNK):
        deleted += session.execute(delete(EvalDatasetRecord).where(
            EvalDatasetRecord.dataset_pk == dataset.id,
            EvalDatasetRecord.record_id.in_(ids[start:start + _CHUNK]))).rowcount or 0
    if deleted:
        count = datasets.count_records(session, dataset)
        dataset.profile = json.dumps({"num_records": count}) if count else None
    return deleted


def records_json_text(records: list[EvalDatasetRecord], dataset_id: str) -> str:
    """The records as MLflow's JSON list of ``DatasetRecord.to_dict``, written straight
    from the stored JSON documents (which we wrote with ``json.dumps``), without
    decoding and encoding them again."""
    dataset = json.dumps(dataset_id)
    parts = []
    for r in records:
        fields = [f'"dataset_record_id": {json.dumps(r.record_id)}', f'"dataset_id": {dataset}', f'"inputs": {r.inputs}']
        if r.expectations is not None:
            fields.append(f'"expectations": {r.expectations}')
        fields.append(f'"tags": {r.tags or "{}"}')
        if r.source is not None:
            fields.append(f'"source": {r.source}')
        for name in ("source_type", "source_id"):
            if getattr(r, name) is not None:
                fields.append(f'"{name}": {json.dumps(getattr(r, name))}')
        fields.append(f'"created_time": {int(r.creation_time)}, "last_update_time": {int(r.last_update_time)}')
        for name in ("created_by", "last_updated_by"):
            if getattr(r, name) is not None:
                fields.append(f'"{name}": {json.dumps(getattr(r, name))}')
        if r.outputs is not None:
            fields.append(f'"outputs": {r.outputs}')
        parts.append("{" + ", ".join(fields) + "}")
    return "[" + ", ".join(parts) + "]"
