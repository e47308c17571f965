"""The package registry's rules for reading: package and file names, finding
packages and their files, listing them, and opening a file's bytes.

A package is identified per project by ``(package_type, name, version)``; its files by
their '/'-separated path. Several files may share one storage object (a registered
model version exposing a logged model's files without copying them). Writing (uploads,
deletes, sharing, multipart uploads) is ``package_writes``; the storage objects behind
the files are ``package_storage``.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator, Optional
from urllib.parse import unquote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Package, PackageFile
from ..registry.storage import Storage
from ..search.keyset import Atom, Pager, fingerprint
from .package_storage import storage_or_default

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


# --------------------------------------------------------------------------- packages and files


def find_package(session: Session, project_id: str, name: str, version: str,
                 package_type: str = GENERIC) -> Optional[Package]:
    return session.scalars(select(Package).where(
        Package.project_id == project_id, Package.package_type == package_type,
        Package.name == name, Package.version == version)).one_or_none()


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
    next_token: Optional[str] = None  # keyset pagination only: the signed cursor of the next page


PACKAGES_TOKEN_KIND = "packages"
ORDERS = {"created_at": Package.created_at, "name": Package.name, "version": Package.version,
          "type": Package.package_type, "id": Package.id}


def list_packages(session: Session, project_id: str, *, package_name: Optional[str] = None,
                  package_type: Optional[str] = None, package_version: Optional[str] = None,
                  order_by: str = "created_at", sort: str = "asc", page: int = 1, per_page: int = 20,
                  cursor: Optional[str] = None, keyset: bool = False) -> PackagePage:
    """Packages of a project. ``package_name`` is a substring match as in GitLab.

    Keyset pagination (``keyset=True``) orders by id and continues after ``cursor`` (a
    ``next_token`` of an earlier page: the API's ``cursor``, the list page's too): stable
    however many packages are added meanwhile. Otherwise classic page/per_page.
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
        atoms = [Atom(Package.id, not descending, False, int)]
        bound_to = fingerprint("packages", project_id, package_name, package_type, package_version, descending)
        pager = Pager(PACKAGES_TOKEN_KIND, atoms, cursor, bound_to, what="cursor",
                      arguments="package_name, package_type, package_version or sort")
        result = pager.fetch(session, stmt, per_page)
        return PackagePage(result.items, None, result.next_cursor)
    if order_by not in ORDERS:
        raise InvalidParameter(f"order_by must be one of {', '.join(ORDERS)}.")
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    column = ORDERS[order_by]
    order = (column.desc(), Package.id.desc()) if descending else (column.asc(), Package.id.asc())
    rows = list(session.scalars(stmt.order_by(*order).offset((page - 1) * per_page).limit(per_page)))
    return PackagePage(rows, total)


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
    storage = storage_or_default(storage)
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


# --------------------------------------------------------------------------- reading


def open_file(file: PackageFile, start: int = 0, end: Optional[int] = None,
              storage: Optional[Storage] = None) -> Iterator[bytes]:
    """Bytes ``start..end`` (inclusive) of a file; ResourceDoesNotExist if its object is
    gone (deleted underneath us)."""
    with _content_must_exist():
        return storage_or_default(storage).open_range(file.storage_key, start, end)


def open_whole_file(file: PackageFile, storage: Optional[Storage] = None) -> Optional[BinaryIO]:
    """The whole file as a local file object (``Storage.open_file``), or None where the
    storage has none; ResourceDoesNotExist if its object is gone."""
    with _content_must_exist():
        return storage_or_default(storage).open_file(file.storage_key)


@contextmanager
def _content_must_exist() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise ResourceDoesNotExist("The file's content is missing from storage.") from None
