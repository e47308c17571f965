"""The package registry's rules for writing: storing files (in one request, or in
parts: multipart uploads), deleting files and packages, and sharing files between
packages.

Replacing a file is atomic for readers: the new bytes are stored first under a new key,
then the row is switched to that key in the request's transaction, and the old object is
deleted only after that transaction commits (``package_storage.delete_after_commit``). A
failed or rolled-back upload deletes its own new object instead.

Files may share one storage key (``share_files``: a registered model version exposing the
files of a logged model without copying them); an object is deleted only when no row
refers to it any more.
"""
from __future__ import annotations

import mimetypes
import re
from typing import Any, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, PayloadTooLarge, ResourceDoesNotExist
from ..models import Package, PackageFile
from ..registry.storage import FileTooLarge, InvalidPart, Storage, UploadNotFound
from .common import dialect_insert, now_ms
from .package_storage import (
    delete_after_commit,
    delete_if_rolled_back,
    max_file_size,
    new_storage_key,
    storage_or_default,
)
from .packages import (
    GENERIC,
    ML_MODEL,
    count_files,
    find_file,
    find_package,
    package_files,
    require_package,
    validate_file_path,
    validate_package_name,
    validate_package_type,
    validate_version,
)


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
    storage = storage_or_default(storage)
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
    storage = storage_or_default(storage)
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


# --------------------------------------------------------------------------- deleting


def _drop_files(session: Session, files: list[PackageFile], storage: Optional[Storage]) -> int:
    if not files:
        return 0
    storage = storage_or_default(storage)
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
    storage = storage_or_default(storage)
    key = new_storage_key(project_id)
    return key, storage.create_multipart(key)


def upload_part(key: str, upload_id: str, part_number: int, stream: Any,
                storage: Optional[Storage] = None) -> str:
    """Store one part (streamed); returns its etag."""
    limit = max_file_size()
    try:
        return storage_or_default(storage).upload_part(key, upload_id, part_number, stream, max_size=limit)
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
    validate_package_name(name, package_type)
    version = validate_version(version)
    validate_file_path(file_path)
    storage = storage_or_default(storage)
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
        storage_or_default(storage).abort_multipart(key, upload_id)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
