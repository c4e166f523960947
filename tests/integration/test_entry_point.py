"""``model_src/entry_point.py`` as the SageMaker scikit-learn framework container uses it.

The container imports the module ``entry_point`` from the unpacked ``source_dir``
(``model_src`` on ``sys.path``, the project not installed) and, per request, runs
``output_fn(predict_fn(input_fn(request.content, content_type), model), accept)``,
where ``request.content`` is text for JSON and CSV and bytes otherwise, and a
``(body, content_type)`` tuple from ``output_fn`` becomes the response.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, payloads
from credit_model.handlers import transform

CONTAINER = r"""
import json, sys
from pathlib import Path

import entry_point  # as the framework container imports it
import credit_model, credit_schema

code = Path.cwd().resolve()
for module in (entry_point, credit_model, credit_schema):
    assert Path(module.__file__).resolve().is_relative_to(code), module.__file__

requests = json.loads(sys.stdin.read())
model = entry_point.model_fn(sys.argv[1])
answers = {}
for name, (content, content_type, is_text) in requests.items():
    content = content if is_text else content.encode()
    result = entry_point.output_fn(
        entry_point.predict_fn(entry_point.input_fn(content, content_type), model),
        "application/json",
    )
    body, returned_type = result
    answers[name] = [json.loads(body), returned_type]
print(json.dumps(answers))
"""


def test_framework_container_imports_and_serves_the_entry_point(
    tmp_path: Path,
    synthetic_model_dir: Path,
    synthetic_model: Any,
    sample_applicants: list[dict[str, Any]],
) -> None:
    code = tmp_path / "code"  # /opt/ml/code: the unpacked source_dir
    shutil.copytree(ROOT / "model_src", code, ignore=shutil.ignore_patterns("__pycache__"))
    requests = {
        name: [body if isinstance(body, str) else body.decode(), ctype, not ctype.endswith("lines")]
        for name, (body, ctype) in payloads(sample_applicants).items()
    }
    result = subprocess.run(
        [sys.executable, "-c", CONTAINER, str(synthetic_model_dir)],
        cwd=code,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    expected = json.loads(
        transform(synthetic_model, json.dumps(sample_applicants), "application/json", None)[0]
    )
    assert set(answers) == set(requests)
    for name, (body, content_type) in answers.items():
        assert content_type == "application/json", name
        assert body == expected, name
