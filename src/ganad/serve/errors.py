"""A refusal: an HTTP status with the library's kind of message (input, problem, fix)."""

from __future__ import annotations


class Refusal(Exception):
    """Raised inside the service for a request it refuses; rendered as ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, type: str = "BadRequest", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.headers = status, message, type, headers or {}
