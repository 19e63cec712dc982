"""The admin web app: blueprints registered on the Flask app."""

from __future__ import annotations

from flask import Flask


def init_web(app: Flask) -> None:
    """Register the web blueprints on ``app``."""
