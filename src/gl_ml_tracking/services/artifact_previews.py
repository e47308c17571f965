"""What a run page shows for one artifact: an image, text or code, Markdown,
a CSV table, an MLflow ``log_table`` JSON as a paged table, an HTML page (in a
sandboxed frame, drawn by the page), or why there is no preview. Reads at most
``limit`` bytes from storage; the answer is a plain dict for the template."""
from __future__ import annotations

import csv
import io
import json
import posixpath
from typing import Any

from sqlalchemy.orm import Session

from ..errors import ResourceDoesNotExist
from . import artifacts as artifact_service
from .markdown_safe import render_markdown

# Images a browser may show inline; everything else downloads. No SVG: it can carry script.
INLINE_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}
HTML_FILES = {".html", ".htm"}
TEXT_PREVIEWS = {".txt", ".log", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sh", ".r", ".sql",
                 ".mlmodel", ".xml", ".svg", ".tsv"}
PREVIEW_ROWS = 200  # rows of a CSV preview
TABLE_PAGE_ROWS = 100  # rows of one page of a log_table preview


def _log_table(doc: Any) -> tuple[list, list] | None:
    """(columns, rows) when ``doc`` is what ``mlflow.log_table`` writes (pandas'
    ``split`` orientation: ``{"columns": [...], "data": [[...], ...]}``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list) or not isinstance(doc.get("data"), list):
        return None
    if not all(isinstance(row, list) for row in doc["data"]):
        return None
    return doc["columns"], doc["data"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _table_page(columns: list, rows: list, page: int) -> dict:
    pages = max(1, -(-len(rows) // TABLE_PAGE_ROWS))
    page = min(max(1, page), pages)
    start = (page - 1) * TABLE_PAGE_ROWS
    return {
        "kind": "log_table",
        "columns": [_cell(c) for c in columns],
        "rows": [[_cell(c) for c in row] for row in rows[start:start + TABLE_PAGE_ROWS]],
        "row_count": len(rows),
        "first_row": start + 1 if rows else 0,
        "page": page,
        "pages": pages,
    }


def _csv_rows(text: str, delimiter: str) -> dict:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = []
    try:
        for i, row in enumerate(reader):
            if i > PREVIEW_ROWS:
                break
            rows.append(row)
    except csv.Error:
        return {"kind": "text", "text": text}
    return {"kind": "table", "rows": rows[:PREVIEW_ROWS + 1], "more": len(rows) > PREVIEW_ROWS + 1}


def preview(session: Session, project_id: str, package: str, version: str, path: str, limit: int,
            table_page: int = 1) -> dict:
    """The preview of the artifact ``path`` of the run's package ``package``/``version``."""
    try:
        file = artifact_service.get_artifact_file(session, project_id, package, version, path)
    except ResourceDoesNotExist:
        return {"path": path, "kind": "missing"}
    ext = posixpath.splitext(path)[1].lower()
    result: dict[str, Any] = {"path": path, "size": int(file.size), "kind": "none", "limit": limit}
    if ext in INLINE_IMAGES:
        result["kind"] = "image"
        return result
    if ext in HTML_FILES:
        result["kind"] = "html" if file.size <= limit else "too_big"
        return result
    readable = ext in TEXT_PREVIEWS or ext in (".json", ".csv", ".md", ".markdown") or (
        (file.content_type or "").startswith("text/"))
    if not readable:
        return result
    if file.size > limit:
        result["kind"] = "too_big"
        return result
    raw = b""
    if file.size:
        _file, chunks = artifact_service.open_artifact(session, project_id, package, version, path, 0,
                                                       min(file.size, limit) - 1)
        raw = b"".join(chunks)[:limit]
    text = raw.decode("utf-8", errors="replace")
    if ext == ".json":
        try:
            doc = json.loads(text)
        except ValueError:
            result.update(kind="text", text=text)
            return result
        table = _log_table(doc)
        if table is not None:
            result.update(_table_page(table[0], table[1], table_page))
        else:
            result.update(kind="code", text=json.dumps(doc, indent=2, ensure_ascii=False))
    elif ext in (".csv", ".tsv"):
        result.update(_csv_rows(text, "\t" if ext == ".tsv" else ","))
    elif ext in (".md", ".markdown"):
        result.update(kind="markdown", html=render_markdown(text))
    else:
        result.update(kind="text", text=text)
    return result
