"""The model side of the ``credit-explainer`` command, run as real processes.

synth -> train (metric lines a SageMaker regex reads) -> serve-model with two worker
processes, answering /ping and a real boto3 ``invoke_endpoint``, stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import runtime_client, wait_for_ping
from credit_model.train import METRIC_DEFINITIONS
from credit_schema import FEATURES, TARGET

CLI = [sys.executable, "-m", "credit_explainer"]


def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["synth", "train", "serve-model"])
def test_help_of_each_command(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: credit-explainer {command}" in result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("cli")
    data = work / "applicants.csv"
    made = cli("synth", "--rows", "3000", "--seed", "3", "-o", str(data))
    assert made.returncode == 0, made.stderr
    model_dir = work / "model"
    result = cli(
        "train",
        "--data",
        str(data),
        "--model-dir",
        str(model_dir),
        "--n-estimators",
        "20",
        "--max_depth",
        "5",
        "--n-jobs",
        "1",
    )
    assert result.returncode == 0, result.stderr
    return {"data": data, "model_dir": model_dir, "stdout": result.stdout}


def test_synth_writes_the_give_me_some_credit_columns(trained: dict[str, Any]) -> None:
    header, *rows = trained["data"].read_text().splitlines()
    assert header.split(",") == [TARGET, *FEATURES]
    assert len(rows) == 3000


def test_synth_to_stdout_is_seeded() -> None:
    one, two = (
        cli("synth", "--rows", "20", "--seed", "5"),
        cli("synth", "--rows", "20", "--seed", "5"),
    )
    assert one.returncode == 0 and one.stdout == two.stdout
    assert len(one.stdout.splitlines()) == 21


def test_train_prints_its_metrics_for_people(trained: dict[str, Any]) -> None:
    # SageMaker's metric lines are the entry point's (test_deploy_sagemaker_layout.py).
    metrics = json.loads((trained["model_dir"] / "metrics.json").read_text())
    assert not any(re.search(d["Regex"], trained["stdout"]) for d in METRIC_DEFINITIONS)
    assert (
        f"held-out {metrics['test_rows']:,} rows: ROC AUC {metrics['roc_auc']:.4f}, "
        f"PR AUC {metrics['pr_auc']:.4f}, Brier {metrics['brier']:.4f}, "
        f"log loss {metrics['log_loss']:.4f}\n"
    ) in trained["stdout"]
    meta = json.loads((trained["model_dir"] / "metadata.json").read_text())
    assert meta["hyperparameters"]["n_estimators"] == 20
    assert meta["hyperparameters"]["max_depth"] == 5  # the SageMaker spelling --max_depth


def test_the_demo_trains_for_people_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from credit_model.commands import train_default

    train_default(tmp_path / "model", data=_small_data(tmp_path))
    out = capsys.readouterr().out
    assert "held-out " in out and "ROC AUC" in out
    assert not any(re.search(d["Regex"], out) for d in METRIC_DEFINITIONS)


def _small_data(tmp_path: Path) -> Path:
    from credit_model.synth import generate

    path = tmp_path / "small.csv"
    generate(2_000, seed=3).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{bad}"], "missing column"),
        (["--data", "{one_class}"], "both classes"),
        (["--data", "{data}", "--n-estimators", "0"], "n_estimators"),
    ],
)
def test_train_refuses_bad_input_with_a_message(
    trained: dict[str, Any], tmp_path: Path, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("age,Income\n40,1000\n")
    one_class = tmp_path / "one-class.csv"
    rows = trained["data"].read_text().splitlines()
    one_class.write_text("\n".join([rows[0], *(r for r in rows[1:200] if r.startswith("0,"))]))
    paths = {"bad": bad, "one_class": one_class, "data": trained["data"]}
    argv = [a.format(**paths) for a in args]
    result = cli("train", *argv, "--model-dir", str(tmp_path / "m"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_synth_refuses_zero_rows() -> None:
    result = cli("synth", "--rows", "0")
    assert result.returncode == 2 and "--rows" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def served(trained: dict[str, Any]) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}  # the container's variable
    proc = subprocess.Popen(
        [
            *CLI,
            "serve-model",
            "--model-dir",
            str(trained["model_dir"]),
            "--port",
            str(port),
            "--endpoint-name",
            "cli-test",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_ping(url, proc, "serve-model")
    info = {"url": url, "proc": proc}
    yield info
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_model_with_two_workers_answers_boto3(
    served: dict[str, Any], sample_applicants: list[dict[str, Any]]
) -> None:
    runtime = runtime_client(served["url"])
    bodies = set()
    for _ in range(6):
        response = runtime.invoke_endpoint(
            EndpointName="cli-test",
            Body=json.dumps(sample_applicants),
            ContentType="application/json",
        )
        assert response["InvokedProductionVariant"] == "AllTraffic"
        bodies.add(response["Body"].read())
    assert len(bodies) == 1  # the same numbers whichever worker answered
    predictions = json.loads(bodies.pop())["predictions"]
    assert len(predictions) == len(sample_applicants)
    with pytest.raises(runtime.exceptions.ValidationError):
        runtime.invoke_endpoint(EndpointName="other", Body=b"{}", ContentType="application/json")


def test_serve_model_stops_cleanly_on_sigterm(served: dict[str, Any]) -> None:
    proc = served["proc"]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served['url']}/ping", timeout=1)


def test_serve_model_refuses_a_tampered_model(trained: dict[str, Any], tmp_path: Path) -> None:
    tampered = tmp_path / "model"
    shutil.copytree(trained["model_dir"], tampered)
    with (tampered / "model.skops").open("ab") as fh:
        fh.write(b"\0")
    result = cli("serve-model", "--model-dir", str(tampered), "--port", str(free_port()))
    assert result.returncode == 2
    assert "SHA-256" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "workers"),
    [
        ("CREDIT_EXPLAINER_MAX_APPLICANTS", "abc", "1"),
        ("CREDIT_EXPLAINER_THREADS", "0", "1"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "nan", "1"),
        ("CREDIT_EXPLAINER_MAX_BODY_BYTES", "-5", "2"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "two", None),
    ],
)
def test_serve_model_refuses_a_bad_setting_in_one_line(
    trained: dict[str, Any], variable: str, value: str, workers: str | None
) -> None:
    port = ["--port", str(free_port())]
    result = cli(
        "serve-model",
        "--model-dir",
        str(trained["model_dir"]),
        *port,
        *(["--workers", workers] if workers else []),
        env={**os.environ, variable: value},
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {variable} must be a positive" in result.stderr
    assert repr(value) in result.stderr and "Traceback" not in result.stderr
