"""URL converters the blueprints' rules use."""
from __future__ import annotations

from werkzeug.routing import PathConverter

PATH_CONVERTER = "glml_anypath"


class AnyPathConverter(PathConverter):
    """Werkzeug's ``path`` also matching newlines, so that a path with an encoded control
    character reaches our validation (a JSON 400) instead of the host's HTML 404."""

    regex = "[^/](?:.|\\n)*?"


def add_converters(state) -> None:
    """``Blueprint.record_once`` callback: record it before the rules that use the converter."""
    state.app.url_map.converters.setdefault(PATH_CONVERTER, AnyPathConverter)
