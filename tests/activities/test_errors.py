import traceback
from datetime import timedelta

import httpx2
import openai
import pytest

from activities.errors import retry_after, to_application_error
from activities.failures import FailureType

REQUEST = httpx2.Request("POST", "http://provider.test/v1/responses")


def status_error(
    status: int, headers: dict[str, str] | None = None, code: str | None = None
) -> openai.APIStatusError:
    body = {"error": {"message": f"boom {status}", "type": "x", "code": code, "param": None}}
    response = httpx2.Response(status, headers=headers, json=body, request=REQUEST)
    client = openai.OpenAI(api_key="k", base_url="http://provider.test/v1")
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_request_errors_are_not_retryable(status: int) -> None:
    error = to_application_error(status_error(status, code="invalid_request"))
    assert error.non_retryable
    assert error.type == FailureType.PROVIDER_ERROR
    assert f"HTTP {status}" in error.message
    assert "invalid_request" in error.message
    assert error.details[0] == {"status": status, "code": "invalid_request"}
    assert error.next_retry_delay is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_transient_errors_are_retryable(status: int) -> None:
    error = to_application_error(status_error(status))
    assert not error.non_retryable
    assert error.details[0]["status"] == status


def test_retry_after_becomes_the_next_retry_delay() -> None:
    assert to_application_error(status_error(429, {"retry-after": "7"})).next_retry_delay == timedelta(
        seconds=7
    )
    assert to_application_error(status_error(503, {"retry-after-ms": "1500"})).next_retry_delay == timedelta(
        seconds=1.5
    )


def test_retry_after_is_capped_and_ignores_garbage() -> None:
    assert retry_after(httpx2.Headers({"retry-after": "86400"})) == timedelta(minutes=10)
    assert retry_after(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after(httpx2.Headers({"retry-after": "-3"})) is None
    assert retry_after(None) is None


def test_connection_errors_are_retryable() -> None:
    error = to_application_error(openai.APIConnectionError(request=REQUEST))
    assert not error.non_retryable
    assert error.details[0]["code"] == "connection_error"


def test_the_provider_body_is_not_copied_into_the_failure() -> None:
    # Error bodies can echo request fields; only status, code and the provider's message are kept.
    error = to_application_error(status_error(400))
    assert set(error.details[0]) == {"status", "code"}


def test_the_provider_message_is_in_the_failure_but_not_in_the_string_form() -> None:
    # The real API's invalid_prompt errors quote the prompt: str() is what logs and tracebacks show.
    error = to_application_error(status_error(400, code="invalid_prompt"))
    assert error.message == "provider returned HTTP 400 (invalid_prompt): Error code: 400 - boom 400"
    for shown in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert "boom" not in shown
        assert "HTTP 400 (invalid_prompt)" in shown


def test_a_stream_error_event_keeps_its_message_out_of_the_string_form() -> None:
    error = to_application_error(openai.APIError("the output so far: boom", REQUEST, body=None))
    assert "boom" in error.message
    assert "boom" not in str(error)
    assert "provider sent an error event (stream_error)" in str(error)


def test_a_connection_error_keeps_its_whole_message_in_the_string_form() -> None:
    # The transport's words name the endpoint that is down; they carry nothing of the job.
    error = to_application_error(openai.APIConnectionError(request=REQUEST))
    assert str(error) == f"ProviderError: {error.message}"
    assert "POST http://provider.test/v1/responses" in str(error)
