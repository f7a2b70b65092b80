"""OpenAI-shaped error answers.

The SDK picks its exception class from the status code and reads ``message``/``type``/``param``/
``code`` from the ``{"error": {...}}`` body, so every refusal the emulator makes goes through here to
look exactly like the real API's.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

JSON_HEADERS = {"content-type": "application/json"}

_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to perform this request.", "invalid_request_error", None),
    404: ("Not found.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout_error", None),
    409: ("Conflict.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: (
        "The server is overloaded or not ready yet.",
        "service_unavailable_error",
        "server_is_overloaded",
    ),
    504: ("Gateway timeout.", "server_error", None),
}


class EmulatorError(Exception):
    """A refusal raised inside request handling and turned into an OpenAI error answer.

    Args:
        status: HTTP status code.
        message: ``error.message``; the status's default message when ``None``.
        type_: ``error.type``; the status's default type when ``None``.
        param: ``error.param``.
        code: ``error.code``; the status's default code when ``None``.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        type_: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        default_message, default_type, default_code = _DEFAULTS.get(
            status, ("Error.", "invalid_request_error" if status < 500 else "server_error", None)
        )
        self.status = status
        self.message = message if message is not None else default_message
        self.type = type_ if type_ is not None else default_type
        self.param = param
        self.code = code if code is not None else default_code
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """Return the JSON body the real API sends for this error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(error: EmulatorError, *, retry_after_s: int, request_id: str) -> httpx2.Response:
    """Render an :class:`EmulatorError` as an HTTP answer, with ``Retry-After`` on 429 and 503.

    Returns:
        The answer to send.
    """
    headers = {**JSON_HEADERS, "x-request-id": request_id}
    if error.status in (429, 503):
        headers["retry-after"] = str(retry_after_s)
    return httpx2.Response(error.status, headers=headers, content=json.dumps(error.body()).encode())


def not_found(response_id: str) -> EmulatorError:
    """Return the 404 the real API gives for an unknown, deleted, expired or ``store=false`` id."""
    return EmulatorError(404, f"Response with id '{response_id}' not found.")
