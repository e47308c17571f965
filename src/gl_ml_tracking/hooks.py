"""What the host tells the extension, through hooks registered by decorator.

The extension never imports the host. Everything it needs to know about users,
projects, permissions and CI jobs comes through these callables, each of which
has a safe default (see ``DEFAULT_HOOKS``): with no hooks registered nothing is
readable or writable, so a half-configured host leaks nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol, runtime_checkable

# Permission names passed to ``permission_checker``. Hosts map them to roles.
READ_MODEL_EXPERIMENTS = "read_model_experiments"
WRITE_MODEL_EXPERIMENTS = "write_model_experiments"
READ_PACKAGE = "read_package"
WRITE_PACKAGE = "write_package"
READ_MODEL_REGISTRY = "read_model_registry"
WRITE_MODEL_REGISTRY = "write_model_registry"
READ_BUILD = "read_build"
# Managing the project's webhooks (GitLab: maintainers).
ADMIN_MODEL_REGISTRY = "admin_model_registry"

ALL_PERMISSIONS = (
    READ_MODEL_EXPERIMENTS,
    WRITE_MODEL_EXPERIMENTS,
    READ_PACKAGE,
    WRITE_PACKAGE,
    READ_MODEL_REGISTRY,
    WRITE_MODEL_REGISTRY,
    READ_BUILD,
    ADMIN_MODEL_REGISTRY,
)


@runtime_checkable
class Project(Protocol):
    """Any host object with these attributes. ``web_url`` is optional."""

    id: Any
    full_path: str
    name: str


@runtime_checkable
class User(Protocol):
    """The caller, as the host's ``user_loader`` identifies it.

    Required: ``id`` and ``username``. Optional attributes the extension reads
    with ``getattr``:

    - ``ci_job_id``: set when the request was authenticated with a CI job token;
      runs created by such a request are linked to that job automatically.
    - ``name``: a display name.
    """

    id: Any
    username: str


@dataclass(frozen=True)
class LinkRef:
    """Something with a name and a URL, as shown in the CI panel."""

    name: str
    url: Optional[str] = None


@dataclass(frozen=True)
class UserRef:
    """How a user is displayed: what ``user_presenter`` returns."""

    id: Any
    username: str
    name: Optional[str] = None
    url: Optional[str] = None
    avatar_url: Optional[str] = None


@dataclass(frozen=True)
class CiPipeline:
    id: Any
    ref: Optional[str] = None
    sha: Optional[str] = None
    url: Optional[str] = None


@dataclass(frozen=True)
class CiMergeRequest:
    iid: Any
    title: str
    url: Optional[str] = None
    target_branch: Optional[str] = None
    source_branch: Optional[str] = None


@dataclass(frozen=True)
class CiJob:
    """What ``ci_job_loader`` returns for a job of the given project.

    ``project_id`` must be the id of the project the job ran in: the extension
    refuses to link a run to a job of another project.
    """

    id: Any
    project_id: Any
    name: str
    status: Optional[str] = None
    url: Optional[str] = None
    pipeline: Optional[CiPipeline] = None
    merge_request: Optional[CiMergeRequest] = None
    user: Optional[UserRef] = None


ProjectLoader = Callable[[str], Optional[Project]]
UserLoader = Callable[[Any], Optional[User]]
PermissionChecker = Callable[[Optional[User], Project, str], bool]
CiJobLoader = Callable[[Project, Any], Optional[CiJob]]
CiJobsLister = Callable[..., Optional[Iterable[Any]]]
UserPresenter = Callable[[Any], Optional[UserRef]]


def default_project_loader(ref: str) -> Optional[Project]:
    # No host, no projects: everything is 404.
    return None


def default_user_loader(request: Any) -> Optional[User]:
    return None


def default_permission_checker(user: Optional[User], project: Project, permission: str) -> bool:
    # Deny everything but reads of projects that declare themselves public.
    if permission in (READ_MODEL_EXPERIMENTS, READ_PACKAGE, READ_MODEL_REGISTRY):
        return getattr(project, "visibility", None) == "public"
    return False


def default_ci_job_loader(project: Project, job_id: Any) -> Optional[CiJob]:
    return None


def default_ci_jobs_for(project: Project, pipeline_id: Any = None, merge_request_iid: Any = None,
                        ref: Optional[str] = None) -> Optional[Iterable[Any]]:
    """``ci_jobs_for``: the ids of this project's jobs in one pipeline, in the
    pipelines of one merge request, or in the branch pipelines of one ``ref``
    (exactly one of the three is given per call).

    Runs store only their job id, so this is how the extension filters runs
    by pipeline or merge request and finds a merge request's target-branch
    runs. Return ``None`` when the pipeline or merge request does not exist
    (or the host cannot tell); ``[]`` when it exists but has no jobs. For a
    ``ref`` the host may return only its newest jobs (say the last 10,000).
    Default: ``None``, so CI filters match nothing and the merge-request
    view answers 404.
    """
    return None


def default_user_presenter(user_id: Any) -> Optional[UserRef]:
    if user_id is None:
        return None
    return UserRef(id=user_id, username=str(user_id))


DEFAULT_HOOKS: dict[str, Callable[..., Any]] = {
    "project_loader": default_project_loader,
    "user_loader": default_user_loader,
    "permission_checker": default_permission_checker,
    "ci_job_loader": default_ci_job_loader,
    "ci_jobs_for": default_ci_jobs_for,
    "user_presenter": default_user_presenter,
}
