"""The package registry's rules: packages, their files, and the bytes behind them.

A package is identified per project by ``(package_type, name, version)``; its files by
their '/'-separated path. Bytes live in the configured storage under a key of their own,
never derived from user input (so a path can never escape the store), and *new for every
upload*. That makes replacing a file atomic for readers: the new bytes are stored first,
then the row is switched to the new key in the request's transaction, and the old object is
deleted only after that transaction commits (see :func:`delete_after_commit`). A failed or
rolled-back upload deletes its own new object instead.

Files may share one storage key (``share_files``: a registered model version exposing the
files of a logged model without copying them); an object is deleted only when no row
refers to it any more.
"""
from __future__ import annotations

import logging
import mimetypes
import re
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator, Optional
from urllib.parse import unquote

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, PayloadTooLarge, ResourceDoesNotExist
from ..state import get_state
from ..models import Package, PackageFile
from ..registry.storage import FileTooLarge, Storage
from .common import dialect_insert, now_ms

log = logging.getLogger("gl_ml_tracking.packages")

GENERIC = "generic"
ML_MODEL = "ml_model"
PACKAGE_TYPES = (GENERIC, ML_MODEL)

MAX_NAME_LENGTH = 255
MAX_VERSION_LENGTH = 255
MAX_PATH_LENGTH = 1024  # characters, the column's size
MAX_SEGMENT_BYTES = 255  # one directory or file name, as on common file systems

# GitLab's generic packages: letters, digits and . _ - + (no spaces, no slashes).
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+\-]*\Z")
_VERSION_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._+\-]*\Z")


# --------------------------------------------------------------------------- validation


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or unicodedata.category(c) in ("Cs",) for c in text)


def validate_package_name(name: Any, package_type: str = GENERIC) -> str:
    """A package name. Generic packages follow GitLab's charset; ``ml_model`` packages are
    named after registered models, which MLflow lets hold almost anything, so for those only
    control characters, slashes and backslashes are refused."""
    if not isinstance(name, str) or not name:
        raise InvalidParameter("The package name must be a non-empty string.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"The package name is longer than {MAX_NAME_LENGTH} characters.")
    if package_type == GENERIC:
        if not _NAME_RE.match(name) or name in (".", ".."):
            raise InvalidParameter(
                f"Invalid package name {name!r}: use letters, digits, '.', '_', '-' and '+', "
                "starting with a letter or digit.")
    elif _has_control(name) or "/" in name or "\\" in name or name.strip() in (".", "..", ""):
        raise InvalidParameter(f"Invalid package name {name!r}.")
    return name


def validate_version(version: Any) -> str:
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version:
        raise InvalidParameter("The package version must be a non-empty string.")
    if len(version) > MAX_VERSION_LENGTH:
        raise InvalidParameter(f"The package version is longer than {MAX_VERSION_LENGTH} characters.")
    if not _VERSION_RE.match(version):
        raise InvalidParameter(
            f"Invalid package version {version!r}: use letters, digits, '.', '_', '-' and '+', "
            "starting with a letter or digit.")
    return version


def _is_dot_segment(segment: str) -> bool:
    # Also the spellings that turn into '.'/'..' under Unicode normalization (fullwidth dots).
    return unicodedata.normalize("NFKC", segment).strip() in (".", "..")


def _structural_problem(path: str) -> Optional[str]:
    if _has_control(path):
        return "must not contain control characters"
    if "\\" in path:
        return "must not contain backslashes"
    if path.startswith("/") or re.match(r"\A[A-Za-z]:", path):
        return "must be relative, not absolute"
    for segment in path.split("/"):
        if segment == "":
            return "must not contain empty segments"
        if _is_dot_segment(segment):
            return "must not contain '.' or '..' segments"
    return None


def validate_file_path(path: Any, *, allow_empty: bool = False, what: str = "file path") -> str:
    """A relative '/'-separated path (already percent-decoded), returned unchanged.

    Refused, with a 400 that says why: absolute paths, '..' and '.' segments, empty segments
    ('a//b', a trailing '/'), backslashes, control characters, more than MAX_PATH_LENGTH
    characters or a name over MAX_SEGMENT_BYTES bytes. The same rules hold for the path
    percent-decoded once and twice more: a name like '%2e%2e%2fx' would become a traversal
    in any tool on the way (proxy, client, file system) that decodes again.
    """
    if path is None:
        path = ""
    if not isinstance(path, str):
        raise InvalidParameter(f"The {what} must be a string.")
    if path == "":
        if allow_empty:
            return ""
        raise InvalidParameter(f"The {what} must not be empty.")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidParameter(f"The {what} is longer than {MAX_PATH_LENGTH} characters.")
    once = unquote(path)
    for candidate in dict.fromkeys((path, once, unquote(once))):
        problem = _structural_problem(candidate)
        if problem:
            shown = path if len(path) <= 200 else path[:200] + "..."
            raise InvalidParameter(f"The {what} {problem}: {shown!r}.")
    for segment in path.split("/"):
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidParameter(f"A name in the {what} is longer than {MAX_SEGMENT_BYTES} bytes.")
    return path


def validate_package_type(package_type: Any) -> str:
    if package_type not in PACKAGE_TYPES:
        raise InvalidParameter(f"Invalid package type {package_type!r}: expected one of {', '.join(PACKAGE_TYPES)}.")
    return package_type


# --------------------------------------------------------------------------- storage helpers


def _storage(storage: Optional[Storage]) -> Storage:
    return storage if storage is not None else get_state().get_storage()


def max_file_size() -> int:
    return int(get_state().config.max_file_size)


_SAFE_PROJECT_RE = re.compile(r"\A[A-Za-z0-9_\-]{1,64}\Z")


def new_storage_key(project_id: str) -> str:
    """A fresh key: grouped by project (so an operator can find a project's bytes), fanned
    out over 256 directories, never derived from a file name. The name starts with the
    creation time in milliseconds (12 hex digits) so that garbage collection can leave
    young objects alone: their rows may not be committed yet (see :func:`storage_key_time`)."""
    project_part = project_id if _SAFE_PROJECT_RE.match(project_id) else "x" + uuid.uuid5(uuid.NAMESPACE_URL, project_id).hex
    token = f"{now_ms():012x}{uuid.uuid4().hex[:20]}"
    return f"projects/{project_part}/{token[-2:]}/{token}"


_KEY_NAME_RE = re.compile(r"\A([0-9a-f]{12})[0-9a-f]{20}\Z")


def storage_key_time(key: str) -> Optional[int]:
    """Creation time (ms) of a key made by :func:`new_storage_key`, else None."""
    match = _KEY_NAME_RE.match(key.rsplit("/", 1)[-1])
    return int(match.group(1), 16) if match else None


# Deletions of storage objects wait for the transaction's outcome. Keys are kept in the
# session's ``info`` with the storage they belong to.
_ON_COMMIT = "glml_delete_on_commit"
_ON_ROLLBACK = "glml_delete_on_rollback"
_HOOKED = "glml_storage_hooks"


def _delete_quietly(pending: list[tuple[Storage, str]]) -> None:
    for storage, key in pending:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - an object left behind is found by `ml-tracking gc`
            log.warning("could not delete storage object %s", key, exc_info=True)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_ON_COMMIT, [])
    session.info.pop(_ON_ROLLBACK, None)  # the new objects are now referenced
    _delete_quietly(pending)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:  # a savepoint; wait for the outer transaction
        return
    # Reached after a commit too, when both lists are already empty.
    pending = session.info.pop(_ON_ROLLBACK, [])
    session.info.pop(_ON_COMMIT, None)
    _delete_quietly(pending)


def _real_session(session: Any) -> Session:
    # Flask-SQLAlchemy hands out a scoped_session; events belong to the actual Session.
    return session() if callable(session) and not isinstance(session, Session) else session


def _hook(session: Any) -> Session:
    real = _real_session(session)
    if not real.info.get(_HOOKED):
        event.listen(real, "after_commit", _after_commit)
        event.listen(real, "after_transaction_end", _after_transaction_end)
        real.info[_HOOKED] = True
    return real


def delete_after_commit(session: Any, storage: Storage, keys: Iterable[str]) -> None:
    """Delete these storage objects once the current transaction commits (not if it rolls
    back: then the rows pointing at them are back too)."""
    real = _hook(session)
    real.info.setdefault(_ON_COMMIT, []).extend((storage, k) for k in keys)


def delete_if_rolled_back(session: Any, storage: Storage, keys: Iterable[str]) -> None:
    """Delete these freshly stored objects if the transaction does not commit."""
    real = _hook(session)
    real.info.setdefault(_ON_ROLLBACK, []).extend((storage, k) for k in keys)


def _unreferenced(session: Session, keys: set[str], dropping_ids: set[int]) -> set[str]:
    """The keys no file row other than ``dropping_ids`` refers to."""
    if not keys:
        return set()
    still = set()
    key_list = sorted(keys)
    for start in range(0, len(key_list), 500):
        chunk = key_list[start:start + 500]
        stmt = select(PackageFile.storage_key).where(PackageFile.storage_key.in_(chunk))
        if dropping_ids:
            stmt = stmt.where(PackageFile.id.not_in(dropping_ids))
        still.update(session.scalars(stmt))
    return keys - still


# --------------------------------------------------------------------------- packages


def find_package(session: Session, project_id: str, name: str, version: str,
                 package_type: str = GENERIC) -> Optional[Package]:
    return session.scalars(select(Package).where(
        Package.project_id == project_id, Package.package_type == package_type,
        Package.name == name, Package.version == version)).one_or_none()


def find_or_create_package(session: Session, project_id: str, name: str, version: str,
                           package_type: str = GENERIC) -> Package:
    """The package, created if missing. Safe under concurrency: an INSERT .. ON CONFLICT DO
    NOTHING, then a read, so two first uploads to a new package both succeed."""
    validate_package_type(package_type)
    validate_package_name(name, package_type)
    version = validate_version(version)
    found = find_package(session, project_id, name, version, package_type)
    if found is not None:
        return found
    now = now_ms()
    insert = dialect_insert(session)
    session.execute(
        insert(Package)
        .values(project_id=project_id, name=name, version=version, package_type=package_type,
                status="default", created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[Package.project_id, Package.package_type, Package.name, Package.version])
    )
    found = find_package(session, project_id, name, version, package_type)
    if found is None:  # inserted now or by a concurrent request: cannot happen
        raise RuntimeError(f"package {name}/{version} vanished right after its creation")
    return found


def get_package(session: Session, project_id: str, package_id: Any) -> Package:
    try:
        pk = int(package_id)
    except (TypeError, ValueError):
        raise ResourceDoesNotExist("404 Package Not Found") from None
    package = session.scalars(select(Package).where(Package.id == pk, Package.project_id == project_id)).one_or_none()
    if package is None:
        raise ResourceDoesNotExist("404 Package Not Found")
    return package


def require_package(session: Session, project_id: str, name: str, version: str,
                    package_type: str = GENERIC) -> Package:
    package = find_package(session, project_id, name, version, package_type)
    if package is None:
        raise ResourceDoesNotExist("404 Package Not Found")
    return package


@dataclass(frozen=True)
class PackagePage:
    packages: list[Package]
    total: Optional[int]  # offset pagination only
    next_cursor: Optional[int]  # keyset pagination only: the last id of this page


ORDERS = {"created_at": Package.created_at, "name": Package.name, "version": Package.version,
          "type": Package.package_type, "id": Package.id}


def list_packages(session: Session, project_id: str, *, package_name: Optional[str] = None,
                  package_type: Optional[str] = None, package_version: Optional[str] = None,
                  order_by: str = "created_at", sort: str = "asc", page: int = 1, per_page: int = 20,
                  after_id: Optional[int] = None, keyset: bool = False) -> PackagePage:
    """Packages of a project. ``package_name`` is a substring match as in GitLab.

    Keyset pagination (``keyset=True``) orders by id and continues after ``after_id``:
    stable however many packages are added meanwhile. Otherwise classic page/per_page.
    """
    stmt = select(Package).where(Package.project_id == project_id)
    if package_name:
        escaped = package_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Package.name.like(f"%{escaped}%", escape="\\"))
    if package_type:
        stmt = stmt.where(Package.package_type == validate_package_type(package_type))
    if package_version:
        stmt = stmt.where(Package.version == package_version)
    descending = sort == "desc"
    if keyset:
        if after_id is not None:
            stmt = stmt.where(Package.id < after_id if descending else Package.id > after_id)
        stmt = stmt.order_by(Package.id.desc() if descending else Package.id.asc()).limit(per_page + 1)
        rows = list(session.scalars(stmt))
        more = len(rows) > per_page
        rows = rows[:per_page]
        return PackagePage(rows, None, rows[-1].id if more and rows else None)
    if order_by not in ORDERS:
        raise InvalidParameter(f"order_by must be one of {', '.join(ORDERS)}.")
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    column = ORDERS[order_by]
    order = (column.desc(), Package.id.desc()) if descending else (column.asc(), Package.id.asc())
    rows = list(session.scalars(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page)))
    return PackagePage(rows, total, None)


def package_files(session: Session, package: Package, prefix: str = "") -> list[PackageFile]:
    """Files of a package ordered by path; with ``prefix`` ('a/b/'), only those under it."""
    stmt = select(PackageFile).where(PackageFile.package_id == package.id)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(PackageFile.file_path.like(escaped + "%", escape="\\"))
    return list(session.scalars(stmt.order_by(PackageFile.file_path)))


def fill_missing_md5(files: Iterable[PackageFile], storage: Optional[Storage] = None) -> None:
    """Compute and record the md5 of files stored without one (MLflow artifact uploads
    skip it: it was the slowest part of an upload, and only this API shows it). The rows
    are updated in the caller's transaction, so each file is read back at most once."""
    missing = [f for f in files if f.md5 is None]
    if not missing:
        return
    storage = _storage(storage)
    for file in missing:
        try:
            file.md5 = storage.md5_of(file.storage_key)
        except FileNotFoundError:
            log.warning("package file %s: stored object %s is missing", file.id, file.storage_key)


def count_files(session: Session, package_ids: list[int]) -> dict[int, int]:
    if not package_ids:
        return {}
    rows = session.execute(select(PackageFile.package_id, func.count()).where(
        PackageFile.package_id.in_(package_ids)).group_by(PackageFile.package_id))
    return {pid: n for pid, n in rows}


def find_file(session: Session, package: Package, file_path: str) -> Optional[PackageFile]:
    return session.scalars(select(PackageFile).where(
        PackageFile.package_id == package.id, PackageFile.file_path == file_path)).one_or_none()


def get_file(session: Session, project_id: str, name: str, version: str, file_path: str,
             package_type: str = GENERIC) -> PackageFile:
    package = find_package(session, project_id, name, version, package_type)
    found = find_file(session, package, file_path) if package is not None else None
    if found is None:
        raise ResourceDoesNotExist("404 Not Found")
    return found


def get_file_by_id(session: Session, package: Package, file_id: Any) -> PackageFile:
    try:
        pk = int(file_id)
    except (TypeError, ValueError):
        raise ResourceDoesNotExist("404 Package File Not Found") from None
    found = session.scalars(select(PackageFile).where(
        PackageFile.id == pk, PackageFile.package_id == package.id)).one_or_none()
    if found is None:
        raise ResourceDoesNotExist("404 Package File Not Found")
    return found


# --------------------------------------------------------------------------- storing


def guess_content_type(file_path: str, given: Optional[str] = None) -> str:
    if given:
        given = given.split(",")[0].strip()
        # Accept a well-formed media type only (it is echoed back in downloads).
        if re.match(r"\A[\w.+\-]+/[\w.+\-]+(\s*;\s*[\w.\-]+=[\w.\-\"]+)*\Z", given) and len(given) <= 255:
            if given != "application/x-www-form-urlencoded":  # what bare HTTP clients default to
                return given
    guessed, _ = mimetypes.guess_type(file_path, strict=False)
    return guessed or "application/octet-stream"


def store_file(session: Session, project_id: str, name: str, version: str, file_path: str,
               stream: Any, content_type: Optional[str] = None, *, package_type: str = GENERIC,
               storage: Optional[Storage] = None, max_size: Optional[int] = None,
               content_length: Optional[int] = None, with_md5: bool = True) -> PackageFile:
    """Stream ``stream`` into package ``name``/``version`` at ``file_path``.

    The bytes go to a new storage key *before* any row is written (a long upload holds no
    database lock), hashed on the way. Then the package is found or created and the file
    row inserted, or switched to the new key if the path exists; the old object is deleted
    after commit. 413 past ``max_size`` (default GL_ML_TRACKING_MAX_FILE_SIZE). Without
    ``with_md5`` the md5 is left for ``fill_missing_md5`` to compute when it is first shown.
    """
    validate_package_type(package_type)
    validate_package_name(name, package_type)
    version = validate_version(version)
    validate_file_path(file_path)
    storage = _storage(storage)
    limit = max_file_size() if max_size is None else max_size
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"File is too large: {content_length} bytes, the limit is {limit} bytes.")
    key = new_storage_key(project_id)
    try:
        stored = storage.save(key, stream, max_size=limit, with_md5=with_md5)
    except FileTooLarge:
        raise PayloadTooLarge(f"File is too large: the limit is {limit} bytes.") from None
    return record_file(session, project_id, name, version, file_path, key, stored.size, stored.sha256,
                       stored.md5, guess_content_type(file_path, content_type), package_type=package_type,
                       storage=storage)


def record_file(session: Session, project_id: str, name: str, version: str, file_path: str,
                key: str, size: int, sha256: str, md5: Optional[str], content_type: Optional[str], *,
                package_type: str = GENERIC, storage: Optional[Storage] = None) -> PackageFile:
    """Point ``file_path`` of the package at the already stored object ``key``."""
    storage = _storage(storage)
    delete_if_rolled_back(session, storage, [key])
    package = find_or_create_package(session, project_id, name, version, package_type)
    now = now_ms()
    values = dict(size=size, sha256=sha256, md5=md5, content_type=content_type, storage_key=key, created_at=now)
    insert = dialect_insert(session)
    inserted = session.execute(
        insert(PackageFile)
        .values(package_id=package.id, file_path=file_path, **values)
        .on_conflict_do_nothing(index_elements=[PackageFile.package_id, PackageFile.file_path])
        .returning(PackageFile.id)
    ).scalar_one_or_none()
    if inserted is None:
        # The path exists: lock its row (PostgreSQL; SQLite's write lock is already held),
        # switch it to the new object and drop the old one once this commits.
        row = session.execute(select(PackageFile.id, PackageFile.storage_key).where(
            PackageFile.package_id == package.id, PackageFile.file_path == file_path).with_for_update()).one()
        session.execute(update(PackageFile).where(PackageFile.id == row.id).values(**values))
        inserted = row.id
        if _unreferenced(session, {row.storage_key}, set()):
            delete_after_commit(session, storage, [row.storage_key])
    session.execute(update(Package).where(Package.id == package.id).values(updated_at=now))
    session.expire(package)  # stale after the core UPDATE
    return session.get(PackageFile, inserted, populate_existing=True)


# --------------------------------------------------------------------------- reading


def open_file(file: PackageFile, start: int = 0, end: Optional[int] = None,
              storage: Optional[Storage] = None) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of a file; ResourceDoesNotExist if its object is
    gone (deleted underneath us)."""
    with _content_must_exist():
        return _storage(storage).open_range(file.storage_key, start, end)


def open_whole_file(file: PackageFile, storage: Optional[Storage] = None) -> Optional[BinaryIO]:
    """The whole file as a local file object (``Storage.open_file``), or None where the
    storage has none; ResourceDoesNotExist if its object is gone."""
    with _content_must_exist():
        return _storage(storage).open_file(file.storage_key)


@contextmanager
def _content_must_exist() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise ResourceDoesNotExist("The file's content is missing from storage.") from None


# --------------------------------------------------------------------------- deleting


def _drop_files(session: Session, files: list[PackageFile], storage: Optional[Storage]) -> int:
    if not files:
        return 0
    storage = _storage(storage)
    ids = {f.id for f in files}
    keys = _unreferenced(session, {f.storage_key for f in files}, ids)
    for f in files:
        session.delete(f)
    session.flush()
    delete_after_commit(session, storage, sorted(keys))
    return len(files)


def delete_file(session: Session, package: Package, file: PackageFile,
                storage: Optional[Storage] = None) -> None:
    """Delete one file; a package left without files is deleted too (as GitLab does)."""
    _drop_files(session, [file], storage)
    if not count_files(session, [package.id]):
        session.delete(package)
    else:
        package.updated_at = now_ms()
    session.flush()


def delete_files_under(session: Session, package: Package, path: str = "",
                       storage: Optional[Storage] = None) -> int:
    """Delete the file at ``path`` or every file below directory ``path`` ('' = all)."""
    files = package_files(session, package)
    if path:
        files = [f for f in files if f.file_path == path or f.file_path.startswith(path + "/")]
    count = _drop_files(session, files, storage)
    if not count_files(session, [package.id]):
        session.delete(package)
        session.flush()
    return count


def delete_package(session: Session, package: Package, storage: Optional[Storage] = None) -> int:
    """Delete a package, its file rows, and (after commit) the objects only it used."""
    count = _drop_files(session, package_files(session, package), storage)
    session.delete(package)
    session.flush()
    return count


def delete_packages(session: Session, project_id: str, name: str, versions: Optional[list[str]] = None,
                    package_type: str = GENERIC, storage: Optional[Storage] = None) -> int:
    """Delete every version of package ``name`` (or the given ``versions``); file count."""
    stmt = select(Package).where(Package.project_id == project_id, Package.package_type == package_type,
                                 Package.name == name)
    if versions is not None:
        if not versions:
            return 0
        stmt = stmt.where(Package.version.in_([str(v) for v in versions]))
    total = 0
    for package in list(session.scalars(stmt)):
        total += delete_package(session, package, storage)
    return total


# --------------------------------------------------------------------------- sharing


def share_files(session: Session, project_id: str, src_name: str, src_version: str,
                dst_name: str, dst_version: str, *, src_type: str = GENERIC,
                dst_type: str = ML_MODEL, prefix: str = "") -> Package:
    """Make package ``dst`` hold the files of package ``src`` (optionally only those under
    directory ``prefix``, which is then stripped) without copying bytes: the rows share
    storage keys. Existing files of ``dst`` at the same paths are replaced."""
    src = require_package(session, project_id, src_name, src_version, src_type)
    dst = find_or_create_package(session, project_id, dst_name, dst_version, dst_type)
    prefix = prefix.strip("/")
    for f in package_files(session, src, prefix + "/" if prefix else ""):
        path = f.file_path[len(prefix) + 1:] if prefix else f.file_path
        existing = find_file(session, dst, path)
        if existing is not None:
            if existing.storage_key == f.storage_key:
                continue
            _drop_files(session, [existing], None)
        session.add(PackageFile(package_id=dst.id, file_path=path, size=f.size, sha256=f.sha256, md5=f.md5,
                                content_type=f.content_type, storage_key=f.storage_key, created_at=now_ms()))
    session.flush()
    return dst


# --------------------------------------------------------------------------- multipart uploads


def begin_multipart(project_id: str, storage: Optional[Storage] = None) -> tuple[str, str]:
    """Start a multipart upload to a fresh key; returns ``(storage_key, upload_id)``."""
    storage = _storage(storage)
    key = new_storage_key(project_id)
    return key, storage.create_multipart(key)


def upload_part(key: str, upload_id: str, part_number: int, stream: Any,
                storage: Optional[Storage] = None) -> str:
    """Store one part (streamed); returns its etag."""
    from ..registry.storage import UploadNotFound

    limit = max_file_size()
    try:
        return _storage(storage).upload_part(key, upload_id, part_number, stream, max_size=limit)
    except FileTooLarge:
        raise PayloadTooLarge(f"Part is too large: the file limit is {limit} bytes.") from None
    except UploadNotFound:
        raise ResourceDoesNotExist("No such multipart upload (finished, aborted or unknown).") from None
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None


def complete_multipart(session: Session, project_id: str, name: str, version: str, file_path: str,
                       key: str, upload_id: str, parts: list[tuple[int, str]],
                       content_type: Optional[str] = None, *, package_type: str = GENERIC,
                       storage: Optional[Storage] = None) -> PackageFile:
    """Assemble the parts into the object at ``key`` and record it at ``file_path``."""
    from ..registry.storage import InvalidPart, UploadNotFound

    validate_package_name(name, package_type)
    version = validate_version(version)
    validate_file_path(file_path)
    storage = _storage(storage)
    try:
        stored = storage.complete_multipart(key, upload_id, parts)
    except UploadNotFound:
        raise ResourceDoesNotExist("No such multipart upload (finished, aborted or unknown).") from None
    except (InvalidPart, ValueError) as exc:
        raise InvalidParameter(f"Cannot complete the multipart upload: {exc}") from None
    limit = max_file_size()
    if stored.size > limit:
        storage.delete(key)
        raise PayloadTooLarge(f"File is too large: {stored.size} bytes, the limit is {limit} bytes.")
    return record_file(session, project_id, name, version, file_path, key, stored.size, stored.sha256,
                       stored.md5, guess_content_type(file_path, content_type), package_type=package_type,
                       storage=storage)


def abort_multipart(key: str, upload_id: str, storage: Optional[Storage] = None) -> None:
    try:
        _storage(storage).abort_multipart(key, upload_id)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
