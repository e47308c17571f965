"""Typed errors raised by services; the API maps them to MLflow's error JSON
and the UI maps them to pages."""
from __future__ import annotations


class MlflowError(Exception):
    error_code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str = "", error_code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if error_code:
            self.error_code = error_code
        if status:
            self.status = status

    def to_dict(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}


class InvalidParameter(MlflowError):
    error_code = "INVALID_PARAMETER_VALUE"
    status = 400


class ResourceDoesNotExist(MlflowError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    status = 404


class ResourceAlreadyExists(MlflowError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    status = 400


class PermissionDenied(MlflowError):
    error_code = "PERMISSION_DENIED"
    status = 403


class Unauthenticated(MlflowError):
    error_code = "UNAUTHENTICATED"
    status = 401


class BadRequest(MlflowError):
    error_code = "BAD_REQUEST"
    status = 400


class PayloadTooLarge(MlflowError):
    error_code = "INVALID_PARAMETER_VALUE"
    status = 413


class DataConflict(InvalidParameter):
    """The database refused a change: it conflicts with existing data (a constraint)."""


class DataRejected(InvalidParameter):
    """The database rejected a value of the request (out of range, malformed)."""


class TemporarilyUnavailable(MlflowError):
    """The database is busy or unreachable; clients retry."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    status = 503


class InternalError(MlflowError):
    """An unexpected failure (logged); the client learns nothing more."""


class ProjectNotFound(ResourceDoesNotExist):
    """Raised for a project that does not exist *or* that the caller may not
    read: both answer the same, so a private project's existence never leaks."""

    def __init__(self) -> None:
        super().__init__("404 Project Not Found")
