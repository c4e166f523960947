"""Issue 18 item 0: principal reasons decided once, on the model server, and read by the SDK."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from credit_explainer import ReasonCodes, Score
from credit_model.handlers import model_fn, transform
from credit_model.synth import generate
from credit_schema import ELDERLY_AGE, FEATURES, MIN_CONTRIBUTION, ModelResponse, explanation_dict
from credit_schema.reasons import (
    REASON_CODES_ENV,
    REGISTRY_VERSION,
    ReasonCodesError,
    load_registry,
)


def synthetic_applicants(n: int) -> list[dict[str, Any]]:
    frame = generate(n, seed=18)[list(FEATURES)]
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


@pytest.fixture(scope="module")
def unconstrained_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A model trained with --constraints none: age can raise an elderly applicant's risk,
    which the reasons must still never name (constrained models never let it)."""
    from credit_model.train import Hyperparameters, train

    directory = tmp_path_factory.mktemp("unconstrained")
    hp = Hyperparameters(n_jobs=1, constraints="none")
    train(generate(6_000, seed=7), directory, hyperparameters=hp, log=lambda *_: None)
    return model_fn(directory)


def test_every_json_answer_carries_the_rule_s_reasons(unconstrained_model: Any) -> None:
    applicants = synthetic_applicants(4_000)  # about two elderly applicants whose age raised risk
    out, _ = transform(unconstrained_model, json.dumps(applicants), "application/json", None)
    answer = ModelResponse.model_validate_json(out)
    assert answer.reason_codes_version == REGISTRY_VERSION
    elderly_age_raised = 0
    with_reasons = 0
    for applicant, e in zip(applicants, answer.predictions, strict=True):
        reasons = e.principal_reasons
        assert reasons is not None and len(reasons) <= 4
        by_feature = {c.feature: c.shap_value for c in e.contributions}
        raising = sorted((s for s in by_feature.values() if s >= MIN_CONTRIBUTION), reverse=True)
        # Each reason is a contribution that raised the risk by the minimum, largest first.
        assert [r.shap_value for r in reasons] == [by_feature[r.feature] for r in reasons]
        assert [r.shap_value for r in reasons] == sorted(
            (r.shap_value for r in reasons), reverse=True
        )
        assert all(r.shap_value >= MIN_CONTRIBUTION for r in reasons)
        elderly = applicant["age"] is not None and applicant["age"] >= ELDERLY_AGE
        if elderly:
            assert "age" not in {r.feature for r in reasons}
            elderly_age_raised += by_feature["age"] >= MIN_CONTRIBUTION
        else:
            assert len(reasons) == min(4, len(raising))
        with_reasons += bool(reasons)
    assert with_reasons > 100
    assert elderly_age_raised > 0, "no elderly applicant whose age raised the risk: weak test"


def test_jsonlines_lines_carry_reasons_and_the_registry_version(
    synthetic_model: Any, sample_applicants: list[dict[str, Any]]
) -> None:
    body = json.dumps(sample_applicants)
    whole = json.loads(transform(synthetic_model, body, "application/json", None)[0])
    lines, _ = transform(synthetic_model, body, "application/json", "application/jsonlines")
    parsed = [json.loads(line) for line in lines.splitlines()]
    assert [p["reasons"] for p in parsed] == [p["reasons"] for p in whole["predictions"]]
    assert {p["reason_codes_version"] for p in parsed} == {REGISTRY_VERSION}


def write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def test_a_lender_s_override_changes_texts_and_version(
    synthetic_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = write(
        tmp_path / "codes.json",
        {
            "version": "acme-2026-12",
            "reasons": {
                f: {"code": f"A{i}", "text": f"Acme says {f}"} for i, f in enumerate(FEATURES)
            },
        },
    )
    monkeypatch.setenv(REASON_CODES_ENV, codes)
    model = model_fn(synthetic_model_dir)
    applicants = synthetic_applicants(300)
    answer = json.loads(transform(model, json.dumps(applicants), "application/json", None)[0])
    assert answer["reason_codes_version"] == "acme-2026-12"
    seen = [r for p in answer["predictions"] for r in p["reasons"]]
    assert seen and all(
        r["code"] == f"A{FEATURES.index(r['feature'])}" and r["text"] == f"Acme says {r['feature']}"
        for r in seen
        if not r["code"].endswith("_unknown")
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "not JSON"),
        ({"reasons": {}}, "'version' must be a non-empty string"),
        ({"version": "v", "reasons": {"shoe_size": "Big feet"}}, "reasons.shoe_size: not a model"),
        ({"version": "v", "reasons": {"DebtRatio": {"code": "D"}}}, "reasons.DebtRatio: want"),
        ({"version": "v", "colour": 1}, "unknown keys ['colour']"),
    ],
)
def test_a_bad_override_file_is_a_clear_error(tmp_path: Path, content: Any, message: str) -> None:
    path = write(tmp_path / "codes.json", content)
    with pytest.raises(ReasonCodesError, match=r"codes\.json") as info:
        load_registry(path)
    assert message in str(info.value)


def test_the_server_refuses_to_start_with_a_bad_override(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    codes = write(tmp_path / "codes.json", {"version": "v", "reasons": {"shoe_size": "x"}})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "credit_model",
            "serve",
            "--model-dir",
            str(synthetic_model_dir),
            "--port",
            "0",
        ],
        env={**__import__("os").environ, REASON_CODES_ENV: codes},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "shoe_size: not a model feature" in done.stderr
    assert "Traceback" not in done.stderr


# -- the SDK's Score.reasons() -------------------------------------------------------------------


def score_with(
    server_reasons: list[dict[str, Any]] | None, probability_shift: float = 0.0
) -> Score:
    shap = [0.0] * len(FEATURES)
    shap[FEATURES.index("DebtRatio")] = 0.2
    shap[FEATURES.index("MonthlyIncome")] = 0.1
    values = [1.0] * len(FEATURES)
    e = explanation_dict(0.07 + sum(shap), 0.07, values, shap)  # type: ignore[arg-type]
    return Score.model_validate(
        {**e, "reasons": server_reasons, "index": 0, "model_version": "v", "request_id": "r"}
    )


SERVER = [
    {"code": "S1", "text": "Server says debt", "feature": "DebtRatio", "shap_value": 0.2},
    {"code": "S2", "text": "Server says income", "feature": "MonthlyIncome", "shap_value": 0.1},
]


def test_sdk_reasons_are_the_server_s_when_sent() -> None:
    score = score_with(SERVER)
    got = score.reasons()
    assert [(r.code, r.text, r.value, r.shap_value) for r in got] == [
        ("S1", "Server says debt", 1.0, 0.2),
        ("S2", "Server says income", 1.0, 0.1),
    ]
    assert [r.code for r in score.reasons(max_reasons=1)] == ["S1"]
    assert score.reasons(cutoff=0.9) == []  # below the cut-off: none
    assert [r.code for r in score.reasons(cutoff=0.3)] == ["S1", "S2"]


def test_sdk_reason_codes_override_the_server_s_and_old_servers_fall_back() -> None:
    own = ReasonCodes({"DebtRatio": ("MINE", "My text")})
    assert [r.code for r in score_with(SERVER).reasons(reason_codes=own)] == ["MINE", "income"]
    assert [r.code for r in score_with(None).reasons()] == ["debt_ratio", "income"]
    assert score_with([]).reasons() == []  # the server decided: no reasons


@pytest.mark.parametrize("kwargs", [{"max_reasons": 0}, {"cutoff": 1.5}])
def test_sdk_reasons_options_are_checked_with_server_reasons_too(kwargs: dict[str, Any]) -> None:
    from credit_explainer import UsageError

    with pytest.raises(UsageError):
        score_with(SERVER).reasons(**kwargs)
