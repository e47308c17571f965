"""Entry point of the example forge.

    flask --app examples.host_app forge init-db
    flask --app examples.host_app ml-tracking db upgrade
    flask --app examples.host_app forge seed
    flask --app examples.host_app run

``app`` is built on first use, so importing this module costs nothing;
gunicorn takes ``examples.host_app:app``.
"""
from __future__ import annotations

from examples.forge import create_app  # noqa: F401  (flask --app finds it too)


def __getattr__(name: str):
    # PEP 562: the module-level `app` is made when first asked for, once.
    if name == "app":
        globals()["app"] = created = create_app()
        return created
    raise AttributeError(name)


if __name__ == "__main__":
    create_app().run()
