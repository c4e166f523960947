"""``train --constraints``: past-due monotonicity and Regulation B's elderly-age rule by construction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_model import artifacts, constraints
from credit_model.data import load_csv, split_xy
from credit_model.explain import ShapTreeExplainer, build_explainer
from credit_model.synth import generate
from credit_model.train import Hyperparameters, _sagemaker_parser, hyperparameters_from, train
from credit_schema import ELDERLY_AGE, FEATURES

from tests.conftest import require_real_data

AGE = FEATURES.index("age")
PAST_DUE = [FEATURES.index(f) for f in constraints.risk_features()]


def _train(data: Any, directory: Path, spec: str, **hp: Any) -> artifacts.Artifacts:
    train(
        data,
        directory,
        hyperparameters=Hyperparameters(n_jobs=1, constraints=spec, **hp),
        log=lambda *_: None,
    )
    return artifacts.load(directory)  # skops save/load under the trusted-types policy


@pytest.fixture(scope="module")
def synthetic() -> Any:
    return generate(8_000, seed=11)


@pytest.fixture(scope="module")
def constrained(tmp_path_factory: pytest.TempPathFactory, synthetic: Any) -> artifacts.Artifacts:
    return _train(synthetic, tmp_path_factory.mktemp("constrained"), "all")


def elderly_age_shap_above_zero(model: artifacts.Artifacts, X: np.ndarray) -> tuple[int, int]:
    _, shap = build_explainer(model.pipeline).explain(X)
    elderly = X[:, AGE] >= ELDERLY_AGE
    return int(np.sum(shap[elderly, AGE] > 1e-12)), int(elderly.sum())


def test_parse_names_and_errors() -> None:
    assert constraints.parse(None) == constraints.parse(" none ") == "none"
    # past_due, the name before schemas, is the built-in schema's risk constraint
    assert constraints.parse("elderly-age, past_due") == "risk,elderly_age"
    assert constraints.parse("all") == "risk,elderly_age"
    assert sorted(constraints.risk_features()) == sorted(
        ["NumberOfTime30-59DaysPastDueNotWorse", "NumberOfTimes90DaysLate",
         "NumberOfTime60-89DaysPastDueNotWorse"]
    )
    assert constraints.monotonic_cst("none") is None
    cst = constraints.monotonic_cst("past_due")
    assert cst is not None and [FEATURES[j] for j, d in enumerate(cst) if d == 1] == [
        FEATURES[j] for j in sorted(PAST_DUE)
    ]
    with pytest.raises(ValueError, match="unknown constraint"):
        constraints.parse("age")


def test_sagemaker_hyperparameter_and_metadata(constrained: artifacts.Artifacts) -> None:
    args = _sagemaker_parser().parse_args(["--constraints", "elderly_age,past_due"])
    assert constraints.parse(hyperparameters_from(args).constraints) == "risk,elderly_age"
    meta = constrained.metadata
    assert meta["hyperparameters"]["constraints"] == "risk,elderly_age"
    assert meta["constraints"]["age_cap"] == ELDERLY_AGE
    assert meta["constraints"]["monotonic"] == {
        "NumberOfTime30-59DaysPastDueNotWorse": 1,
        "age": -1,
        "NumberOfTimes90DaysLate": 1,
        "NumberOfTime60-89DaysPastDueNotWorse": 1,
    }
    forest = constrained.pipeline.named_steps["forest"]
    assert list(forest.monotonic_cst) == constraints.monotonic_cst("all")


def test_every_age_threshold_lies_below_62_so_elderly_applicants_share_one_path(
    constrained: artifacts.Artifacts,
) -> None:
    forest = constrained.pipeline.named_steps["forest"]
    thresholds = np.concatenate(
        [e.tree_.threshold[e.tree_.feature == AGE] for e in forest.estimators_]
    )
    assert thresholds.size > 0 and thresholds.max() < ELDERLY_AGE


def test_no_elderly_applicant_has_age_raise_the_risk_on_synthetic_data(
    constrained: artifacts.Artifacts, synthetic: Any
) -> None:
    X, _ = split_xy(synthetic)
    above, elderly = elderly_age_shap_above_zero(constrained, X)
    assert elderly > 500 and above == 0
    # Ages far above any training age get the same answer as 62.
    older = X[X[:, AGE] >= ELDERLY_AGE][:50].copy()
    at62 = older.copy()
    at62[:, AGE] = ELDERLY_AGE
    older[:, AGE] = 103
    ex = build_explainer(constrained.pipeline)
    np.testing.assert_array_equal(ex.explain(older)[1], ex.explain(at62)[1])


def test_more_late_payments_never_lower_the_risk(
    constrained: artifacts.Artifacts, synthetic: Any
) -> None:
    X, _ = split_xy(synthetic)
    p = constrained.pipeline.predict_proba(X)[:, 1]
    for j in PAST_DUE:
        more = X.copy()
        more[:, j] += 1
        assert np.min(constrained.pipeline.predict_proba(more)[:, 1] - p) >= -1e-12


def test_fast_explainer_equals_shap_on_a_constrained_model(
    constrained: artifacts.Artifacts, synthetic: Any
) -> None:
    X, _ = split_xy(synthetic.iloc[:1500])
    fast = build_explainer(constrained.pipeline, "fast")
    p1, s1 = fast.explain(X)
    p2, s2 = ShapTreeExplainer(constrained.pipeline).explain(X)
    assert np.max(np.abs(s1 - s2)) < 1e-9 and np.max(np.abs(p1 - p2)) < 1e-9


def test_real_data_constrained_model_has_no_elderly_violation(tmp_path: Path) -> None:
    data = load_csv(require_real_data())
    model = _train(data, tmp_path / "m", "all")
    X, _ = split_xy(data)
    above, elderly = elderly_age_shap_above_zero(model, X)
    assert elderly > 1000 and above == 0


def test_a_named_constraint_the_schema_cannot_apply_is_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elderly_age`` named on a schema without an age feature would train without it:
    an error line naming the schema instead; ``all`` (the default) applies what it can."""
    from credit_explainer.cli import main
    from credit_model.synth import OTHER_ID, OTHER_PROHIBITED, OTHER_TARGET, generate_other

    generate_other(600, seed=3).to_csv(tmp_path / "loans.csv", index=False)
    assert main(["schema", "infer", "--data", str(tmp_path / "loans.csv"), "--target",
                 OTHER_TARGET, "--positive", "default", "--id-column", OTHER_ID,
                 "--prohibited", OTHER_PROHIBITED, "-o", str(tmp_path / "s.json")]) == 0  # fmt: skip
    document = json.loads((tmp_path / "s.json").read_text())
    for feature in document["features"]:
        feature.pop("age", None)  # a lender's file without the applicant's age
    (tmp_path / "s.json").write_text(json.dumps(document))
    capsys.readouterr()
    args = ["train", "--data", str(tmp_path / "loans.csv"), "--schema", str(tmp_path / "s.json"),
            "--n-estimators", "3", "--n-jobs", "1"]  # fmt: skip
    code = main([*args, "--constraints", "elderly_age", "--model-dir", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code != 0 and not (tmp_path / "a" / "manifest.json").exists()
    error = f"error: constraint elderly_age: schema {document['name']} has no age feature"
    assert error in err.splitlines()[-1]
    assert main([*args, "--model-dir", str(tmp_path / "b")]) == 0  # --constraints all
