"""Issue 28, point 6: a fresh model server does at start only what its first answer needs.

The real ``python -m credit_model serve`` (its ``main`` in the main thread, as the image runs
it) on a default model: once it answers, the cutoff pool's kernels are not loaded yet, numba
loaded neither scipy nor cffi, OpenBLAS runs no worker thread, and the garbage collector is
back on with start-up's objects frozen. A damaged but signed cutoff pool is refused where it is first used, never answered.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from credit_model import artifacts
from credit_model.explain import Explainer
from credit_model.handlers import ExplanationError, model_fn, transform
from credit_model.interventional import INTERVENTIONAL_FILE
from credit_schema.decisions import (
    CUSTOM_ATTRIBUTES_HEADER,
    REFERENCE_ATTRIBUTE,
    DecisionBands,
)

from tests.conftest import SAMPLE_APPLICANTS

BANDS = DecisionBands.parse("approve:0.1,review:0.3,decline")

# The server in the main thread; a thread asks it, reports what the process holds, and ends it.
SERVE = """
import gc, json, os, socket, sys, threading, time, urllib.error, urllib.request
from credit_model.__main__ import main

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
url = f"http://127.0.0.1:{port}/invocations"


def ask(attributes):
    headers = {"Content-Type": "application/json", **attributes}
    request = urllib.request.Request(url, data=sys.argv[2].encode(), headers=headers)
    return json.loads(urllib.request.urlopen(request, timeout=60).read())


def loaded():
    from credit_model import interventional, kernel

    kernels = {"treeshap": kernel.explain_forest, "interventional": interventional._explain}
    return {name: len(k.signatures) for name, k in kernels.items()}


def check():
    report = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                report["first"] = ask({})
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        report["kernels_at_first_answer"] = loaded()
        report["gc_enabled"] = gc.isenabled()
        report["frozen"] = gc.get_freeze_count()
        report["imported"] = [m for m in ("scipy", "cffi") if sys.modules.get(m) is not None]
        from threadpoolctl import threadpool_info

        report["blas_threads"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        report["cutoff"] = ask(json.loads(sys.argv[3]))
        report["kernels_after_cutoff"] = loaded()
    finally:
        print(json.dumps(report), flush=True)
        os._exit(0)


threading.Thread(target=check, daemon=True).start()
main(["serve", "--model-dir", sys.argv[1], "--host", "127.0.0.1", "--port", str(port),
      "--log-level", "warning"])
"""


def cutoff_headers() -> dict[str, str]:
    return {CUSTOM_ATTRIBUTES_HEADER: f"{BANDS.custom_attributes()};{REFERENCE_ATTRIBUTE}=cutoff"}


def test_a_fresh_server_loads_only_what_its_first_answer_needs(
    synthetic_model_dir: Path,
) -> None:
    body = json.dumps(SAMPLE_APPLICANTS[:2])
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(synthetic_model_dir), body, json.dumps(cutoff_headers())],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report: dict[str, Any] = json.loads(served.stdout.strip().splitlines()[-1])
    assert [a["space"] for a in report["first"]["predictions"]] == ["probability"] * 2
    assert report["kernels_at_first_answer"] == {"treeshap": 1, "interventional": 0}
    assert report["imported"] == []
    assert report["blas_threads"] == [1]  # no BLAS worker spinning on the server's cores
    # Back on, with start-up's objects (imports, the model) out of every later collection.
    assert report["gc_enabled"] is True
    assert report["frozen"] > 50_000
    # The cutoff pool is built when first asked for, and answers.
    assert [a["reference"] for a in report["cutoff"]["predictions"]] == ["cutoff"] * 2
    assert report["kernels_after_cutoff"] == {"treeshap": 1, "interventional": 1}


def test_a_failed_start_leaves_the_collector_on(tmp_path: Path) -> None:
    import gc

    from credit_model.__main__ import main

    assert main(["serve", "--model-dir", str(tmp_path / "absent"), "--port", "0"]) == 2
    assert gc.isenabled()


def damaged_but_signed(model_dir: Path, tmp_path: Path) -> Path:
    """The cutoff pool's leaves made NaN, and the file signed again as it now is (what someone
    who can write the directory does): it passes the manifest, not the self-check."""
    d = Path(shutil.copytree(model_dir, tmp_path / "damaged"))
    with np.load(d / INTERVENTIONAL_FILE) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["leaf_value"] = np.full_like(arrays["leaf_value"], np.nan)
    with (d / INTERVENTIONAL_FILE).open("wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    signed = json.loads((d / artifacts.MANIFEST_FILE).read_text())
    signed["files"][INTERVENTIONAL_FILE] = artifacts.sha256_file(d / INTERVENTIONAL_FILE)
    signed.pop("model_version", None)
    (d / artifacts.MANIFEST_FILE).write_text(json.dumps(signed))
    return d


def test_a_damaged_signed_cutoff_pool_is_refused_where_first_used(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    model = model_fn(damaged_but_signed(synthetic_model_dir, tmp_path))
    assert model.served is not None
    # Count the builds of the real builder: a failure is remembered, not rebuilt per request
    # (each rebuild ran under the lock that every explainer built on first use waits for).
    builders = model.served._builders
    build = builders[INTERVENTIONAL_FILE]
    builds: list[int] = []

    def counted() -> Explainer:
        builds.append(1)
        return build()

    builders[INTERVENTIONAL_FILE] = counted
    body = json.dumps(SAMPLE_APPLICANTS[:2])
    out, _ = transform(model, body, "application/json", "application/json", bands=BANDS)
    assert len(json.loads(out)["predictions"]) == 2  # the forest's own explanations still answer
    messages = []
    for _ in range(3):  # refused each time, never answered
        with pytest.raises(ExplanationError, match=f"{INTERVENTIONAL_FILE}: not loadable") as err:
            transform(
                model, body, "application/json", "application/json", bands=BANDS, reference="cutoff"
            )
        assert err.value.status_code == 500
        messages.append(str(err.value))
    assert len(builds) == 1
    assert len(set(messages)) == 1
