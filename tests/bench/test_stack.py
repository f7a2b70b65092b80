"""What the bench stack does without starting anything: webhook mode on a stack named by the environment,
and a plan cut down to the contenders a stack can run."""

import pytest

from bench.contenders import BUILT, Contender
from bench.harness import QUICK, available, webhook_poll_interval_s
from bench.stack import EMULATOR_URL_VARIABLE, WEBHOOK_RECEIVER_VARIABLE, BenchStack
from lanes.dev.stack import StackError, free_port


@pytest.fixture
def external(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv(EMULATOR_URL_VARIABLE, "http://127.0.0.1:1/v1")
    stack = BenchStack(tmp_path, seed=0)
    assert stack.external
    return stack


async def test_an_external_stack_without_a_receiver_leaves_webhook_mode_out(external, monkeypatch, capsys):
    monkeypatch.delenv(WEBHOOK_RECEIVER_VARIABLE, raising=False)
    await external._check_external_receiver()
    assert Contender.WEBHOOK not in external.contenders
    assert external.contenders == tuple(c for c in BUILT if c != Contender.WEBHOOK)
    assert WEBHOOK_RECEIVER_VARIABLE in external.left_out[Contender.WEBHOOK]
    assert "lanes webhook: left out" in capsys.readouterr().err


async def test_an_external_receiver_that_does_not_answer_stops_the_run(external, monkeypatch):
    monkeypatch.setenv(WEBHOOK_RECEIVER_VARIABLE, f"http://127.0.0.1:{free_port()}/webhooks/openai")
    with pytest.raises(StackError, match=WEBHOOK_RECEIVER_VARIABLE):
        await external._check_external_receiver()


def test_a_plan_without_webhook_mode_drops_it_everywhere():
    assert Contender.WEBHOOK in QUICK.capacity_modes
    cut = available(QUICK, tuple(c for c in BUILT if c != Contender.WEBHOOK))
    assert all(Contender.WEBHOOK not in p.contenders for p in cut.points)
    assert Contender.WEBHOOK not in cut.capacity_modes
    assert [len(p.contenders) for p in cut.points] == [
        len(p.contenders) - (Contender.WEBHOOK in p.contenders) for p in QUICK.points
    ]
    assert available(QUICK, BUILT) == QUICK


def test_the_webhook_profile_polls_only_as_a_safety_net():
    assert webhook_poll_interval_s() == 300
