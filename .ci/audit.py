"""Known-vulnerability audit of credit-explainer's resolved dependencies (``make audit``).

Audits, with pip-audit: the installed dev environment (everything the project
resolves to), and each pinned, hashed lock shipped to AWS (the Lambda bundle's
``lambda_fn/requirements.txt`` and the container's ``container/requirements.lock``).

Policy (also in README "Reliability"):

* any known vulnerability fails the audit, unless its ID is listed in
  ``.ci/pip-audit-ignore.txt`` with a reason and a review date (only for advisories
  with no fixed release whose code path credit-explainer does not reach);
* a dependency pip-audit could not look up is reported. By default that is a
  warning (machines whose package index serves no advisory data, such as an
  offline mirror, cannot audit); with ``CREDIT_AUDIT_STRICT=1`` (set it in CI with
  internet access) it fails the audit, so an unreachable advisory service can
  never pass for "no vulnerabilities".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".ci" / "pip-audit-ignore.txt"
LOCKS = [ROOT / "lambda_fn" / "requirements.txt", ROOT / "container" / "requirements.lock"]


def ignored_ids() -> list[str]:
    ids = []
    for line in IGNORE_FILE.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            ids.append(fields[0])
    return ids


def run(label: str, args: list[str]) -> tuple[list[str], list[str]]:
    """One pip-audit run -> (vulnerability lines, unaudited package names)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", *args, "--progress-spinner", "off"]
        cmd += ["--format", "json", "--output", str(out)]
        for vuln_id in ignored_ids():
            cmd += ["--ignore-vuln", vuln_id]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if not out.exists():
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"audit: pip-audit failed on {label} (exit {proc.returncode})")
        report = json.loads(out.read_text())
    vulns, unaudited = [], []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            unaudited.append(dep["name"])
        for v in dep.get("vulns", []):
            fix = ", ".join(v.get("fix_versions") or []) or "no fix released"
            vulns.append(f"{dep['name']} {dep['version']}: {v['id']} (fix: {fix})")
    n = len(report.get("dependencies", []))
    print(
        f"audit: {label}: {n} packages, {len(vulns)} known vulnerabilities, "
        f"{len(unaudited)} not audited"
    )
    return vulns, unaudited


def main() -> int:
    strict = os.environ.get("CREDIT_AUDIT_STRICT") == "1"
    results = [run("dev environment", ["--local", "--skip-editable"])]
    for lock in LOCKS:
        if lock.exists():
            label = str(lock.relative_to(ROOT))
            results.append(
                run(
                    label,
                    ["--requirement", str(lock), "--require-hashes", "--disable-pip", "--no-deps"],
                )
            )
    vulns = [v for found, _ in results for v in found]
    unaudited = sorted({p for _, missing in results for p in missing})
    for line in vulns:
        print(f"audit: VULNERABLE {line}")
    if unaudited:
        print(
            f"audit: WARNING: no advisory data for {len(unaudited)} packages "
            f"(advisory service unreachable?): {', '.join(unaudited[:8])}"
            f"{', ...' if len(unaudited) > 8 else ''}"
        )
    if vulns:
        return 1
    if unaudited and strict:
        print("audit: CREDIT_AUDIT_STRICT=1: an unaudited dependency fails the audit")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
