"""The SageMaker contract, run here: the packed source_dir trains in a directory laid out like
/opt/ml with the SM_* variables and hyperparameter arguments SageMaker's training toolkit gives,
and the resulting model.tar.gz, unpacked like an endpoint does, is served by the container's own
``serve`` program (the project's model server) over real HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from credit_explainer_tools.deploy import DeployConfig
from credit_explainer_tools.deploy.config import repo_root
from credit_explainer_tools.deploy.training import pack_source, script_mode_hyperparameters
from credit_schema import FEATURES

ROOT = repo_root()


def toolkit_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """How sagemaker-training turns hyperparameters.json into the entry point's argv."""
    argv: list[str] = []
    for key, raw in hyperparameters.items():
        if key.startswith("sagemaker_"):
            continue  # consumed by the toolkit itself
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        argv += [f"--{key}", str(value)]
    return argv


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    from credit_model.synth import generate
    from credit_model.train import METRIC_DEFINITIONS

    ml = tmp_path_factory.mktemp("sagemaker") / "opt" / "ml"
    code, train_dir = ml / "code", ml / "input" / "data" / "train"
    model_dir, output = ml / "model", ml / "output"
    for d in (code, train_dir, model_dir, output / "data", ml / "input" / "config"):
        d.mkdir(parents=True)
    # the source tarball deploy uploads, unpacked where the toolkit puts it
    (ml / "sourcedir.tar.gz").write_bytes(pack_source(ROOT))
    with tarfile.open(ml / "sourcedir.tar.gz") as tar:
        tar.extractall(code, filter="data")
    generate(3_000, seed=11).to_csv(train_dir / "train.csv", index=False)
    cfg = DeployConfig(hyperparameters={"n_estimators": "20", "max_depth": "5", "n_jobs": "1"})
    hps = script_mode_hyperparameters(
        cfg, "s3://b/credit-explainer/code/j/sourcedir.tar.gz", "eu-west-1"
    )
    (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps))
    user_hps = {k: json.loads(v) for k, v in hps.items() if not k.startswith("sagemaker_")}
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(train_dir),
        "SM_CHANNELS": json.dumps(["train"]),
        "SM_OUTPUT_DIR": str(output),
        "SM_OUTPUT_DATA_DIR": str(output / "data"),
        "SM_INPUT_DIR": str(ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(ml / "input" / "config"),
        "SM_HPS": json.dumps(user_hps),
        **{f"SM_HP_{k.upper()}": str(v) for k, v in user_hps.items()},
        "SM_USER_ENTRY_POINT": "entry_point.py",
        "SM_MODULE_DIR": "s3://b/credit-explainer/code/j/sourcedir.tar.gz",
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": "2",
        "SM_NUM_GPUS": "0",
    }
    run = subprocess.run(
        [sys.executable, "entry_point.py", *toolkit_arguments(hps)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {
        "ml": ml,
        "model_dir": model_dir,
        "output": output,
        "log": run.stdout + run.stderr,
        "definitions": METRIC_DEFINITIONS,
    }


def test_training_writes_the_model_and_metrics_sagemaker_can_read(trained):
    names = {p.name for p in trained["model_dir"].iterdir()}
    assert {"model.skops", "metadata.json", "metrics.json", "manifest.json"} <= names
    metadata = json.loads((trained["model_dir"] / "metadata.json").read_text())
    assert tuple(metadata["features"]) == FEATURES
    assert json.dumps(metadata).count('"n_estimators": 20') == 1  # the hyperparameter arrived
    # SageMaker extracts metrics from the log with the job's MetricDefinitions
    found = {}
    for definition in trained["definitions"]:
        match = re.search(definition["Regex"], trained["log"])
        assert match, definition
        found[definition["Name"]] = float(match.group(1))
    assert 0.6 < found["validation:roc_auc"] <= 1.0
    assert 0.0 < found["validation:brier"] < 0.25
    assert (trained["output"] / "data" / "metrics.json").is_file()
    # The validation report of the model, beside its artifacts (output.tar.gz)
    report = json.loads((trained["output"] / "data" / "report.json").read_text())
    model_version = json.loads((trained["model_dir"] / "manifest.json").read_text())["model_version"]
    assert report["model"]["model_version"] == model_version
    assert (trained["output"] / "data" / "report.html").read_text().startswith("<!DOCTYPE html>")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_model_tar_gz_serves_through_the_containers_serve_program(
    trained, tmp_path, sample_applicants
):
    from credit_model.handlers import explanations, input_fn, model_fn, predict_fn

    header = ",".join(FEATURES)
    rows = [
        ",".join("" if a[f] is None else str(a[f]) for f in FEATURES) for a in sample_applicants
    ]
    csv_body = "\n".join([header, *rows]) + "\n"

    # SageMaker tars SM_MODEL_DIR into model.tar.gz; the endpoint unpacks it in /opt/ml/model
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(trained["model_dir"].iterdir()):
            tar.add(path, arcname=path.name)
    served = tmp_path / "endpoint" / "opt" / "ml" / "model"
    served.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(served, filter="data")

    port = _free_port()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(served),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "CREDIT_EXPLAINER_SERVE_HOST": "127.0.0.1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        ["sh", str(ROOT / "container" / "serve")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(300):  # wait for start-up (the model loads once)
                if server.poll() is not None:
                    pytest.fail(server.stdout.read().decode()[-3000:])
                try:
                    if http.get("/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                pytest.fail("model server did not come up")

            # Batch Transform's contract: CSV lines in, one JSON explanation per line out
            response = http.post(
                "/invocations",
                content=csv_body,
                headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"},
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/jsonlines")
            lines = [json.loads(x) for x in response.text.splitlines() if x.strip()]
            assert len(lines) == len(sample_applicants)

            # the same numbers as the handlers in-process on the same model directory
            model = model_fn(str(served))
            expected = explanations(predict_fn(input_fn(csv_body, "text/csv"), model))
            http_json = http.post(
                "/invocations",
                content=csv_body,
                headers={"Content-Type": "text/csv", "Accept": "application/json"},
            ).json()
            for got, line, want in zip(http_json["predictions"], lines, expected, strict=True):
                assert (
                    got["probability"]
                    == line["probability"]
                    == pytest.approx(want["probability"], abs=1e-12)
                )
                total = got["base_value"] + sum(c["shap_value"] for c in got["contributions"])
                assert total == pytest.approx(got["probability"], abs=1e-9)
            assert (
                http_json["model_version"]
                == json.loads((served / "manifest.json").read_text())["model_version"]
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
