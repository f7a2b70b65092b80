"""The emulator refuses what the real API refuses: a test double laxer than production hides bugs."""

import json
import re
import typing
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import response_create_params

from responses_emulator import Emulator, EmulatorConfig, ManualClock
from responses_emulator.config import DEFAULT_MODELS
from responses_emulator.emulator import CREATE_PARAMETERS
from responses_emulator.testing import in_process_client

REPO = Path(__file__).resolve().parents[2]

MODELS_USED_IN_LANES = {"gpt-5-mini", "gpt-5", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-2024-08-06"}
"""Models lanes' policy, tests and examples send (policy/default.toml is read as well, below)."""


async def _post(emulator: Emulator, body: dict[str, Any]) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(emulator.handle)) as http:
        return await http.post("http://emulator.local/v1/responses", content=json.dumps(body))


async def test_unknown_parameter_is_the_apis_400(emulator: Emulator):
    answer = await _post(emulator, {"model": "gpt-5-mini", "input": "x", "backgroud": True})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "message": "Unknown parameter: 'backgroud'.",
            "type": "invalid_request_error",
            "param": "backgroud",
            "code": "unknown_parameter",
        }
    }
    assert emulator.ledger.generations() == []


async def test_unknown_parameter_through_the_sdk(client: openai.AsyncOpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-5-mini", input="x", extra_body={"backgroud": True})
    assert (caught.value.code, caught.value.param) == ("unknown_parameter", "backgroud")


def test_known_parameters_are_every_key_of_the_sdks_create_params():
    streaming = typing.get_type_hints(response_create_params.ResponseCreateParamsStreaming)
    non_streaming = typing.get_type_hints(response_create_params.ResponseCreateParamsNonStreaming)
    assert set(streaming) | set(non_streaming) == CREATE_PARAMETERS
    assert {
        "model",
        "input",
        "background",
        "store",
        "stream",
        "metadata",
        "background_options",
    } <= CREATE_PARAMETERS


async def test_rarer_sdk_parameters_are_accepted(client: openai.AsyncOpenAI):
    response = await client.responses.create(
        model="gpt-5-mini",
        input="x",
        include=["message.output_text.logprobs"],
        prompt_cache_key="k",
        safety_identifier="user-1",
        parallel_tool_calls=False,
        truncation="auto",
        store=False,
    )
    assert response.status == "completed"
    assert response.truncation == "auto"


async def test_unknown_model_is_model_not_found(client: openai.AsyncOpenAI, emulator: Emulator):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-9000", input="x")
    error = caught.value
    assert (error.status_code, error.code, error.param) == (400, "model_not_found", "model")
    assert error.body == {
        "message": "The requested model 'gpt-9000' does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    [entry] = emulator.ledger.creates()
    assert (entry.model, entry.status_code, entry.generated) == ("gpt-9000", 400, False)


async def test_model_of_the_wrong_type_is_invalid_type(emulator: Emulator):
    answer = await _post(emulator, {"model": 5, "input": "x"})
    assert answer.json()["error"]["code"] == "invalid_type"
    assert answer.json()["error"]["param"] == "model"


async def test_configured_models_replace_the_default_list():
    sdk = in_process_client(Emulator(EmulatorConfig(models=("house-model",)), clock=ManualClock()))
    assert (await sdk.responses.create(model="house-model", input="x")).model == "house-model"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="gpt-5-mini", input="x")
    assert caught.value.code == "model_not_found"
    await sdk.close()


async def test_an_empty_model_list_accepts_any_model():
    sdk = in_process_client(Emulator(EmulatorConfig(models=()), clock=ManualClock()))
    assert (await sdk.responses.create(model="llama-local", input="x")).status == "completed"
    await sdk.close()


def test_default_models_include_every_model_lanes_uses():
    policy = (REPO / "policy" / "default.toml").read_text()
    in_policy = set(re.findall(r'^model = "([^"]+)"', policy, flags=re.MULTILINE))
    assert in_policy
    assert MODELS_USED_IN_LANES | in_policy <= set(EmulatorConfig().models)
    assert EmulatorConfig().models == DEFAULT_MODELS


@pytest.mark.parametrize(
    ("key", "value", "code", "message"),
    [
        (
            "temperature",
            2.5,
            "decimal_above_max_value",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead.",
        ),
        (
            "temperature",
            -0.1,
            "decimal_below_min_value",
            "Invalid 'temperature': decimal below minimum value. "
            "Expected a value >= 0, but got -0.1 instead.",
        ),
        (
            "top_p",
            1.5,
            "decimal_above_max_value",
            "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead.",
        ),
        (
            "top_p",
            -1,
            "decimal_below_min_value",
            "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -1 instead.",
        ),
        (
            "temperature",
            "hot",
            "invalid_type",
            "Invalid type for 'temperature': expected a decimal, but got a string instead.",
        ),
        (
            "top_p",
            True,
            "invalid_type",
            "Invalid type for 'top_p': expected a decimal, but got a boolean instead.",
        ),
    ],
)
async def test_sampling_parameters_out_of_range_or_of_the_wrong_type(
    emulator: Emulator, key, value, code, message
):
    answer = await _post(emulator, {"model": "gpt-5-mini", "input": "x", key: value})
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": key,
        "code": code,
    }


@pytest.mark.parametrize(("temperature", "top_p"), [(0, 0), (2, 1), (0.7, 0.9), (None, None)])
async def test_sampling_parameters_in_range_are_echoed(client: openai.AsyncOpenAI, temperature, top_p):
    response = await client.responses.create(
        model="gpt-5-mini", input="x", temperature=temperature, top_p=top_p
    )
    assert response.temperature == (1.0 if temperature is None else temperature)
    assert response.top_p == (1.0 if top_p is None else top_p)
