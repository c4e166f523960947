"""Gradient-boosted models of every family, served by the real model server over HTTP.

The server process imports none of scikit-learn, XGBoost, LightGBM or shap (it loads the
compiled tables), answers each library's own probabilities with explanations that add up
in their space (probability by default, log-odds on request), and refuses a model
directory any of whose files was changed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_model import artifacts, families
from credit_model.families import BOOSTED
from credit_model.train import Hyperparameters, train
from credit_schema import FEATURES

from tests.conftest import SAMPLE_APPLICANTS

#: The libraries that fit models: serving needs none of them.
TRAINING_ONLY = ("sklearn", "xgboost", "lightgbm", "shap")

SERVE = """
import json, sys, urllib.request
from credit_explainer_tools.local.stack import ModelServer
from credit_model.handlers import model_fn
bodies = {}
with ModelServer(model_fn(sys.argv[1])) as server:
    for space in sys.argv[3].split(","):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if space:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = "space=" + space
        request = urllib.request.Request(
            server.url + "/invocations", data=sys.argv[2].encode(), headers=headers
        )
        bodies[space] = json.loads(urllib.request.urlopen(request, timeout=60).read())
modules = [m for m in TRAINING_ONLY if m in sys.modules]
print(json.dumps({"bodies": bodies, "modules": modules}))
""".replace("TRAINING_ONLY", repr(TRAINING_ONLY))


@pytest.fixture(scope="module", params=BOOSTED)
def gbm_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from credit_model.synth import generate

    directory = tmp_path_factory.mktemp(f"gbm-{request.param}")
    hp = Hyperparameters(model=request.param, n_estimators=12, max_depth=3, n_jobs=1)
    train(generate(3_000, seed=5), directory, hyperparameters=hp, log=lambda *_: None)
    return directory


def test_served_without_training_libraries_equal_to_the_library(gbm_dir: Path) -> None:
    served = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE,
            str(gbm_dir),
            json.dumps(SAMPLE_APPLICANTS),
            ",log_odds,probability",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(served.stdout.strip().splitlines()[-1])
    assert report["modules"] == []
    loaded = artifacts.load(gbm_dir)
    X = np.array(
        [[np.nan if a[f] is None else a[f] for f in FEATURES] for a in SAMPLE_APPLICANTS],
        dtype=np.float64,
    )
    expected = loaded.pipeline.predict_proba(X)[:, 1]
    family = loaded.metadata["estimator"]["family"]
    tol = max(1e-9, families.module(family).AGREEMENT)  # XGBoost: its float32 sums
    bodies = report["bodies"]
    assert bodies[""] == bodies["probability"]  # probability by default (train --space)
    for space in ("log_odds", "probability"):
        for answer, p in zip(bodies[space]["predictions"], expected, strict=True):
            assert answer["space"] == space
            assert abs(answer["probability"] - p) <= tol
            total = answer["base_value"] + sum(c["shap_value"] for c in answer["contributions"])
            q = answer["probability"]
            target = q if space == "probability" else np.log(q) - np.log1p(-q)
            assert abs(total - target) <= 1e-9


def test_the_forest_is_served_without_training_libraries(synthetic_model_dir: Path) -> None:
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(synthetic_model_dir), json.dumps(SAMPLE_APPLICANTS), ""],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(served.stdout.strip().splitlines()[-1])
    assert report["modules"] == []
    assert {a["space"] for a in report["bodies"][""]["predictions"]} == {"probability"}


def test_tampering_with_any_served_file_is_refused(gbm_dir: Path, tmp_path: Path) -> None:
    import shutil

    from credit_model.handlers import model_fn

    files = json.loads((gbm_dir / artifacts.MANIFEST_FILE).read_text())["files"]
    meta = json.loads((gbm_dir / artifacts.METADATA_FILE).read_text())
    assert {meta["estimator"]["file"], "treeshap.npz", "interventional.npz"} <= set(files)
    for name in files:
        copy = tmp_path / name
        shutil.copytree(gbm_dir, copy)
        blob = bytearray((copy / name).read_bytes())
        blob[len(blob) // 2] ^= 1
        (copy / name).write_bytes(bytes(blob))
        with pytest.raises(artifacts.ModelArtifactError, match=name):
            model_fn(copy)
        with pytest.raises(artifacts.ModelArtifactError, match=name):
            artifacts.load(copy)


def test_the_forest_explains_in_probability_only(synthetic_model: Any, tmp_path: Path) -> None:
    from credit_model.handlers import transform
    from credit_model.synth import generate
    from credit_schema import PayloadError

    body = json.dumps(SAMPLE_APPLICANTS[:1])
    with pytest.raises(PayloadError, match="explains in probability, not 'log_odds'"):
        transform(synthetic_model, body, "application/json", "application/json", space="log_odds")
    out, _ = transform(
        synthetic_model, body, "application/json", "application/json", space="probability"
    )
    assert json.loads(out)["predictions"][0]["space"] == "probability"
    with pytest.raises(ValueError, match="probability only"):
        train(
            generate(500, seed=1),
            tmp_path,
            hyperparameters=Hyperparameters(space="log_odds", n_estimators=2),
            log=lambda *_: None,
        )


def test_scorecard_points_sum_exactly_to_the_score(tmp_path: Path) -> None:
    from credit_model.handlers import model_fn, transform
    from credit_model.synth import generate
    from credit_schema.points import Scorecard

    hp = Hyperparameters(
        model="lightgbm", n_estimators=8, max_depth=3, n_jobs=1, points="600:50:20"
    )
    train(generate(2_000, seed=2), tmp_path / "m", hyperparameters=hp, log=lambda *_: None)
    model = model_fn(tmp_path / "m")
    card = Scorecard.parse("600:50:20")
    for space in ("probability", "log_odds"):
        out, _ = transform(
            model, json.dumps(SAMPLE_APPLICANTS), "application/json", "application/json",
            space=space,
        )  # fmt: skip
        for answer in json.loads(out)["predictions"]:
            points = answer["points"]
            assert points["base"] + sum(points["features"].values()) == points["score"]
            p = answer["probability"]
            assert points["score"] == round(card.offset - card.factor * math.log(p / (1 - p)))
    with pytest.raises(ValueError, match="additive in log-odds"):
        train(
            generate(500, seed=1),
            tmp_path / "rf",
            hyperparameters=Hyperparameters(points="600:50:20", n_estimators=2),
            log=lambda *_: None,
        )


def test_decisions_replay_asks_for_the_space_each_decision_was_explained_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx
    from credit_explainer.cli import main
    from credit_explainer_tools.local.stack import ModelServer
    from credit_model.handlers import model_fn
    from credit_model.synth import generate

    hp = Hyperparameters(model="hgb", n_estimators=8, max_depth=3, n_jobs=1)
    train(generate(2_000, seed=8), tmp_path / "m", hyperparameters=hp, log=lambda *_: None)
    capture = tmp_path / "capture"
    with ModelServer(model_fn(tmp_path / "m"), capture_dir=capture) as server:
        for space in ("log_odds", "probability"):
            answer = httpx.post(
                f"{server.url}/invocations",
                json=SAMPLE_APPLICANTS,
                headers={"X-Amzn-SageMaker-Custom-Attributes": f"space={space}"},
                timeout=60,
            )
            assert answer.status_code == 200
    capsys.readouterr()
    argv = ["decisions", "replay", "--capture", str(capture), "--model-dir", str(tmp_path / "m")]
    assert main(argv) == 0
    assert f"replayed {2 * len(SAMPLE_APPLICANTS)} applicant(s)" in capsys.readouterr().out
