import json
from pathlib import Path

import pytest

from lanes.cli.main import run
from policy import PolicyDecision, default_policy_path, load_policy

DEFAULT = default_policy_path().read_text()


def _run(*argv: str) -> int:
    return run(["policy", *argv])


def test_explain_prints_the_decision_and_the_three_questions(capsys: pytest.CaptureFixture[str]):
    assert _run("explain", "--job-type", "support_analysis", "--data-class", "confidential") == 0
    out = capsys.readouterr().out
    assert "lane:       stateless" in out
    assert "rule:       stateless.approval-missing" in out
    assert "needs long-running execution?      yes     job_types.support_analysis.long_running" in out
    assert "stored state acceptable?           no      data_classes.confidential.stored_state" in out
    assert load_policy().digest in out


def test_explain_json_is_exactly_the_decision(capsys: pytest.CaptureFixture[str]):
    assert _run("explain", "--job-type", "public_research", "--json") == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    decision = PolicyDecision.model_validate(data)
    assert data == decision.model_dump(mode="json")
    assert (data["lane"], data["rule"], data["data_class"], data["tenant"]) == (
        "background",
        "background.allowed",
        "public",
        None,
    )
    assert data["policy_digest"] == load_policy().digest


def test_explain_unknown_job_type_exits_2(capsys: pytest.CaptureFixture[str]):
    assert _run("explain", "--job-type", "foo") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown job type 'foo'; known: coding_analysis, document_transformation" in captured.err


def test_explain_uses_lanes_policy_env(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "p.toml"
    path.write_text(DEFAULT.replace("background_enabled = true", "background_enabled = false"))
    monkeypatch.setenv("LANES_POLICY", str(path))
    assert _run("explain", "--job-type", "public_research", "--json") == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "stateless.kill-switch"
    assert (
        _run("explain", "--job-type", "public_research", "--json", "--policy", str(default_policy_path()))
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rule"] == "background.allowed"


def test_explain_with_approval_and_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "p.toml"
    path.write_text(
        DEFAULT + '\n[approvals.SEC-1]\njob_types = ["regulated_review"]\nmax_data_class = "regulated"\n'
        "expires = 2027-01-01\n"
    )
    argv = ["explain", "--job-type", "regulated_review", "--approval", "SEC-1", "--policy", str(path)]
    assert _run(*argv, "--now", "2026-06-01") == 0
    assert "approval:   SEC-1" in capsys.readouterr().out
    assert _run(*argv, "--now", "2027-06-01", "--json") == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "stateless.approval-invalid"


def test_explain_with_a_broken_policy_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "p.toml"
    path.write_text("policy_version = ")
    assert _run("explain", "--job-type", "public_research", "--policy", str(path)) == 1
    assert "invalid TOML" in capsys.readouterr().err


def test_check_prints_digest_version_and_matrix(capsys: pytest.CaptureFixture[str]):
    assert _run("check", str(default_policy_path())) == 0
    out = capsys.readouterr().out
    assert load_policy().digest in out
    assert "version: 2026-04-24.2" in out
    assert (
        "endpoint openai: OPENAI_BASE_URL, else https://api.openai.com/v1 (key $OPENAI_API_KEY; "
        "zdr_eligible=false, supports_background=true)"
    ) in out
    assert (
        "endpoint openai-zdr: OPENAI_BASE_URL, else https://api.openai.com/v1 (key $OPENAI_ZDR_API_KEY; "
        "zdr_eligible=true, supports_background=false)"
    ) in out
    assert (
        "job type                 public                internal              confidential          "
        "regulated             restricted"
    ) in out
    assert (
        "sensitive_customer       stateless@openai-zdr  stateless@openai-zdr  stateless@openai-zdr  "
        "stateless@openai-zdr  stateless@openai-zdr"
    ) in out
    assert (
        "public_research          background@openai     background@openai     stateless@openai      "
        "stateless@openai      stateless@openai-zdr"
    ) in out
    assert "coding_analysis          background@openai     background@openai     denied " in out


def test_check_json(capsys: pytest.CaptureFixture[str]):
    assert _run("check", str(default_policy_path()), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"digest", "version", "matrix", "endpoints", "signatures"}
    assert data["signatures"] == []  # the shipped policy carries no .sig file
    assert data["endpoints"]["coding_analysis"]["restricted"] is None
    assert data["endpoints"]["public_research"]["restricted"] == "openai-zdr"
    assert data["endpoints"]["public_research"]["regulated"] == "openai"
    assert data["matrix"]["public_research"] == {
        "public": "background",
        "internal": "background",
        "confidential": "stateless",
        "regulated": "stateless",
        "restricted": "stateless",
    }


def test_check_reports_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "bad.toml"
    path.write_text(
        DEFAULT.replace("zdr_only = false", "zdr_only = 1").replace(
            "long_running = true", "long_runing = true", 1
        )
    )
    assert _run("check", str(path), "--json") == 1
    captured = capsys.readouterr()
    errors = json.loads(captured.out)["errors"]
    assert len(errors) == 3
    assert captured.err.splitlines() == errors
    assert any("unknown key 'long_runing'" in e for e in errors)
    assert all(e.startswith(f"{path}: ") for e in errors)


def test_check_refuses_a_zdr_class_on_an_undeclared_endpoint_naming_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The default policy without its endpoint tables (and so without anything on openai-zdr): restricted
    # data would go to the implicit openai endpoint, which is never taken as ZDR-eligible.
    start, end = DEFAULT.index("# --- provider endpoints"), DEFAULT.index("# --- provider profiles")
    undeclared = (DEFAULT[:start] + DEFAULT[end:]).replace('endpoint = "openai-zdr"\n', "")
    undeclared = undeclared.replace('stateless_profile = "openai-zdr-stateless"\n', "")
    path = tmp_path / "undeclared.toml"
    path.write_text(undeclared)
    assert _run("check", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = captured.err.splitlines()
    assert len(errors) == 7  # each job type whose stateless lane would carry restricted data
    for error in errors:
        assert (
            "which the policy does not declare (an undeclared endpoint is never taken as ZDR-eligible)"
            in error
        )
        assert "data_classes.restricted.stateless_profile" in error
        assert "declare [endpoints.openai] with zdr_eligible = true" in error
    assert errors[0].startswith(f"{path}: job_types.")
    assert "Traceback" not in captured.err


def test_diff_without_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "same.toml"
    path.write_text("# reformatted\n" + DEFAULT.replace(" = ", "="))
    assert _run("diff", str(default_policy_path()), str(path)) == 0
    assert "no lane changes" in capsys.readouterr().out


def test_diff_lists_changed_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "new.toml"
    path.write_text(DEFAULT.replace("background_enabled = true", "background_enabled = false"))
    assert _run("diff", str(default_policy_path()), str(path)) == 0
    out = capsys.readouterr().out
    assert (
        "public_research x public: background -> stateless (background.allowed -> stateless.kill-switch)"
        in out
    )
    assert "coding_analysis x internal: background -> denied" in out
    assert _run("diff", str(default_policy_path()), str(path), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["lane_changes"]) == 12  # every background cell of the golden matrix
    assert data["added_job_types"] == data["removed_job_types"] == []


def test_diff_with_a_broken_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "broken.toml"
    path.write_text("policy_version = ")
    assert _run("diff", str(default_policy_path()), str(path)) == 1
    assert "invalid TOML" in capsys.readouterr().err


def test_a_missing_policy_file_is_bad_input_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = str(tmp_path / "missing.toml")
    assert _run("explain", "--job-type", "public_research", "--policy", missing) == 2
    assert f"--policy: no policy file at {missing}" in capsys.readouterr().err
    assert _run("check", missing) == 2
    assert f"no policy file at {missing}" in capsys.readouterr().err
    assert _run("diff", str(default_policy_path()), missing) == 2
    assert f"NEW: no policy file at {missing}" in capsys.readouterr().err


def test_a_bad_now_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert _run("explain", "--job-type", "public_research", "--now", "tomorrow") == 2
    assert "not an ISO date or time: 'tomorrow'" in capsys.readouterr().err


def test_status_shows_the_policy_in_force_and_the_kill_switch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT)
    assert _run("status", "--policy", str(path), "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert state["digest"] == load_policy(path).digest
    assert state["kill_switch"] is None
    (tmp_path / "policy.toml.background-disabled").touch()
    assert _run("status", "--policy", str(path)) == 0
    out = capsys.readouterr().out
    assert "kill switch" in out
    assert "background-disabled" in out


def test_status_of_a_refused_file_exits_1_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT.replace('min_data_class = "public"', 'min_data_class = "secret"'))
    assert _run("status", "--policy", str(path)) == 1
    assert "min_data_class" in capsys.readouterr().err


def test_diff_lists_cells_whose_calls_move_to_another_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    example = default_policy_path().parent / "examples" / "internal_endpoint.toml"
    path = tmp_path / "moved.toml"
    path.write_text(
        example.read_text().replace(
            "[profiles.openai-stateless]\n", '[profiles.openai-stateless]\nendpoint = "internal"\n'
        )
    )
    assert _run("diff", str(example), str(path)) == 0
    out = capsys.readouterr().out
    assert "no lane changes" in out
    assert "endpoint changes (same lane and rule; the calls go elsewhere):" in out
    assert "quick_summary x public: stateless@openai -> stateless@internal (stateless.preferred)" in out


def _loose(tmp_path: Path) -> Path:
    text = default_policy_path().read_text()
    loose = text.replace("require_encryption = true", "require_encryption = false").replace(
        "delete_after_harvest = true", "delete_after_harvest = false"
    )
    assert loose != text
    path = tmp_path / "loose.toml"
    path.write_text(loose)
    return path


def test_diff_of_a_loosening_policy_names_every_setting_and_fails_on_loosening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = _loose(tmp_path)
    assert _run("diff", str(default_policy_path()), str(path)) == 0
    out = capsys.readouterr().out
    assert "WARNING: the rules changed (new digest) but policy_version did not" in out
    assert "this change loosens data control" in out
    assert "LOOSENS data_classes.restricted.require_encryption: true -> false" in out
    assert "LOOSENS data_classes.restricted.delete_after_harvest: true -> false" in out
    assert _run("diff", str(default_policy_path()), str(path), "--fail-on", "loosening") == 1
    assert _run("diff", str(default_policy_path()), str(path), "--fail-on", "any") == 1
    capsys.readouterr()
    assert _run("diff", str(default_policy_path()), str(path), "--format", "markdown") == 0
    markdown = capsys.readouterr().out
    assert "- LOOSENS `data_classes.regulated.require_encryption`: `true` -> `false`" in markdown
    assert _run("diff", str(default_policy_path()), str(path), "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loosens"] is True
    assert data["version_unchanged"] is True
    assert {c["key"] for c in data["setting_changes"]} >= {"data_classes.regulated.delete_after_harvest"}


def test_diff_fails_on_nothing_when_only_the_wording_changed(tmp_path: Path):
    text = default_policy_path().read_text()
    path = tmp_path / "reworded.toml"
    path.write_text(
        text.replace('description = "Published or public-source material."', 'description = "Public."')
    )
    assert _run("diff", str(default_policy_path()), str(path), "--fail-on", "any") == 0
    assert _run("diff", str(default_policy_path()), str(path), "--fail-on", "loosening") == 0


def test_diff_refuses_an_unknown_format_or_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    policy = str(default_policy_path())
    assert _run("diff", policy, policy, "--format", "yaml") == 2
    assert _run("diff", policy, policy, "--fail-on", "sometimes") == 2


def test_the_default_policy_meets_its_shipped_expectations(capsys: pytest.CaptureFixture[str]):
    from policy.expectations import DEFAULT_EXPECTATIONS

    assert _run("test", str(default_policy_path()), str(DEFAULT_EXPECTATIONS)) == 0
    out = capsys.readouterr().out
    assert out.startswith("22 passed, 0 failed (")


def test_a_failed_expectation_prints_the_case_expected_actual_and_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    import tomllib

    from tests.policy.strategies import dump_toml

    doc = tomllib.loads(default_policy_path().read_text())
    doc["data_classes"]["confidential"]["stored_state"] = "allow"
    opened = dump_toml(doc)
    policy = tmp_path / "opened.toml"
    policy.write_text(opened)
    tests = tmp_path / "tests.toml"
    tests.write_text(
        "[[cases]]\n"
        'name = "confidential tickets stay stateless"\n'
        'query = { job_type = "support_analysis", data_class = "confidential" }\n'
        'expect = { lane = "stateless", rule = "stateless.approval-missing" }\n'
    )
    assert _run("test", str(policy), str(tests)) == 1
    out = capsys.readouterr().out
    assert "FAIL confidential tickets stay stateless" in out
    assert "query:    job_type=support_analysis, data_class=confidential" in out
    assert "lane: expected stateless, got background" in out
    assert "decided:  background by background.allowed" in out
    assert "reason:" in out
    assert "0 passed, 1 failed" in out
    assert _run("test", str(policy), str(tests), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failed"][0]["decision"]["lane"] == "background"


def test_a_malformed_expectations_file_names_the_case_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    tests = tmp_path / "tests.toml"
    tests.write_text(
        '[[cases]]\nname = "typo"\nquery = { job_type = "public_research", data_clas = "public" }\n'
        'expect = { lane = "sideways" }\n'
    )
    assert _run("test", str(default_policy_path()), str(tests)) == 2
    err = capsys.readouterr().err
    assert "cases.0.query.data_clas" in err
    assert "cases.0.expect.lane" in err
    assert "Traceback" not in err
    assert _run("test", str(default_policy_path()), str(tmp_path / "missing.toml")) == 2


def test_an_approval_for_a_cell_that_needs_none_is_noted_not_silently_ignored(
    capsys: pytest.CaptureFixture[str],
):
    assert (
        _run("explain", "--job-type", "public_research", "--data-class", "public", "--approval", "SEC-1") == 0
    )
    err = capsys.readouterr().err
    assert "note: --approval: approval 'SEC-1' was ignored" in err
    assert "needs none (stored state: data_classes.public.stored_state)" in err
    # Needed and refused: the decision's own reasons say why; no note.
    assert _run("explain", "--job-type", "regulated_review", "--approval", "SEC-1") == 0
    assert "note:" not in capsys.readouterr().err


def test_keygen_sign_and_check_show_which_signatures_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    policy = tmp_path / "policy.toml"
    policy.write_text(default_policy_path().read_text())
    key = tmp_path / "reviewer.pem"
    assert _run("keygen", "--key", str(key)) == 0
    out = capsys.readouterr().out
    public = out.split("public key: ")[1].split()[0]
    assert key.stat().st_mode & 0o777 == 0o600
    assert _run("keygen", "--key", str(key)) == 2  # never overwritten
    capsys.readouterr()
    assert _run("sign", str(policy), "--key", str(key)) == 0
    assert "signed 2026-04-24.2" in capsys.readouterr().out
    monkeypatch.setenv("LANES_POLICY_TRUSTED_KEYS", public)
    assert _run("check", str(policy)) == 0
    assert "verified" in capsys.readouterr().out
    assert _run("status", "--policy", str(policy)) == 0
    assert "signed by" in capsys.readouterr().out
    policy.write_text(policy.read_text().replace("zdr_only = false", "zdr_only = true"))
    assert _run("check", str(policy), "--json") == 0
    [signature] = json.loads(capsys.readouterr().out)["signatures"]
    assert signature["valid"] is False
    assert "signs another digest" in signature["reason"]
    assert _run("status", "--policy", str(policy)) == 1  # refused: edited after signing
    assert "1 required signatures" in capsys.readouterr().err
    assert _run("sign", str(policy), "--key", str(tmp_path / "missing.pem")) == 2
