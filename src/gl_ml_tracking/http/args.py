"""Query arguments."""
from __future__ import annotations

from typing import Optional

from flask import request

from ..errors import InvalidParameter


def int_arg(name: str, default: Optional[int], minimum: int = 0, maximum: Optional[int] = None, *,
            clamp: bool = False, lenient: bool = False) -> Optional[int]:
    """The integer query argument ``name``; ``default`` when it is absent or empty.

    Not an integer, below ``minimum`` or above ``maximum``: a 400 (``InvalidParameter``),
    except that ``clamp`` lowers a value above ``maximum`` to it (GitLab's ``per_page``)
    and ``lenient`` answers ``default`` instead (a cursor of a page's own links: a
    hand-edited one just shows the first page).
    """
    raw = request.args.get(name, "")
    if raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        if lenient:
            return default
        raise InvalidParameter(f"'{name}' must be an integer, got {raw[:50]!r}.") from None
    if maximum is not None and value > maximum and clamp:
        return maximum
    if value >= minimum and (maximum is None or value <= maximum):
        return value
    if lenient:
        return default
    if maximum is None:
        raise InvalidParameter(f"'{name}' must be at least {minimum}, got {value}.")
    raise InvalidParameter(f"'{name}' must be between {minimum} and {maximum}, got {value}.")
