"""``credit-explainer decisions notice ID``: an adverse-action notice from a decision record.

The page follows Regulation B's model form C-1 (12 CFR 1002, appendix C, "Sample notification
of action taken"): the statement of the action taken, Part I's principal reasons (up to four,
the recorded texts exactly), the creditor's name and address, and the ECOA notice naming the
federal agency that administers compliance. What the record does not hold (the applicant's name
and address: records keep no identity) is left as lines to fill in. The lender's part comes from
a JSON file::

    {"creditor": {"name": "Example Bank", "address": ["1 Main St", "Springfield, IL 62701"],
                  "phone": "555-0100"},
     "ecoa_agency": {"name": "Consumer Financial Protection Bureau",
                     "address": ["1700 G Street NW", "Washington, DC 20552"]},
     "adverse_decisions": ["decline"],
     "action": "Your application for credit has been denied."}

every text checked as reason texts are (:func:`credit_schema.text.text_problem`).
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from credit_schema.reasons import MAX_REASONS
from credit_schema.records import DecisionRecord
from credit_schema.text import text_problem

#: Model form C-1's ECOA notice, with the agency's name and address filled in after it.
ECOA_NOTICE: Final = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status, age (provided the applicant has the capacity to enter into a binding contract); "
    "because all or part of the applicant's income derives from any public assistance "
    "program; or because the applicant has in good faith exercised any right under the "
    "Consumer Credit Protection Act. The Federal agency that administers compliance with this "
    "law concerning this creditor is:"
)
DEFAULT_ACTION: Final = "Your application for credit has been denied."


class LenderConfigError(ValueError):
    """A lender configuration that cannot be used (the message names the file and the field)."""


@dataclass(frozen=True)
class Party:
    name: str
    address: tuple[str, ...]
    phone: str | None = None


@dataclass(frozen=True)
class Lender:
    creditor: Party
    agency: Party
    adverse: frozenset[str]
    action: str


def _text(path: str, where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise LenderConfigError(f"{path}: {where} must be a text")
    problem = text_problem(value)
    if problem:
        raise LenderConfigError(f"{path}: {where} {problem}")
    return value


def _party(path: str, where: str, given: Any) -> Party:
    if not isinstance(given, dict):
        raise LenderConfigError(f"{path}: {where} must be an object with name and address")
    address = given.get("address")
    lines = [address] if isinstance(address, str) else address
    if not isinstance(lines, list) or not lines:
        raise LenderConfigError(f"{path}: {where}.address must be a text or a list of lines")
    phone = given.get("phone")
    return Party(
        _text(path, f"{where}.name", given.get("name")),
        tuple(_text(path, f"{where}.address", line) for line in lines),
        None if phone is None else _text(path, f"{where}.phone", phone),
    )


def load_lender(path: str) -> Lender:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LenderConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise LenderConfigError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LenderConfigError(f"{path}: want a JSON object with creditor and ecoa_agency")
    unknown = set(data) - {"creditor", "ecoa_agency", "adverse_decisions", "action"}
    if unknown:
        raise LenderConfigError(f"{path}: unknown keys {sorted(unknown)}")
    adverse = data.get("adverse_decisions", ["decline"])
    if not isinstance(adverse, list) or not adverse:
        raise LenderConfigError(f"{path}: adverse_decisions must be a list of decision labels")
    return Lender(
        creditor=_party(path, "creditor", data.get("creditor")),
        agency=_party(path, "ecoa_agency", data.get("ecoa_agency")),
        adverse=frozenset(_text(path, "adverse_decisions", a) for a in adverse),
        action=_text(path, "action", data.get("action", DEFAULT_ACTION)),
    )


def _lines(lines: tuple[str, ...]) -> str:
    return "<br>".join(html.escape(line) for line in lines)


_STYLE: Final = """
body { font: 12pt/1.45 Georgia, "Times New Roman", serif; max-width: 42em; margin: 2em auto;
       color: #111; }
h1 { font-size: 15pt; text-align: center; margin-bottom: 1.5em; }
h2 { font-size: 12pt; margin: 1.4em 0 0.4em; }
.field { margin: 0.3em 0; } .blank { display: inline-block; min-width: 20em;
         border-bottom: 1px solid #111; }
ol.reasons li { margin: 0.2em 0; } .ecoa { font-size: 10.5pt; border-top: 1px solid #111;
                                           margin-top: 2em; padding-top: 0.8em; }
.meta { font-size: 9pt; color: #444; margin-top: 2em; }
@page { size: letter; margin: 2cm; } @media print { body { margin: 0; } }
"""


def render_notice(record: DecisionRecord, index: int, lender: Lender, today: datetime) -> str:
    """The notice for applicant ``index`` of ``record`` as one self-contained printable page."""
    result = next(r for r in record.results if r.index == index)
    reasons = (result.principal_reasons or [])[:MAX_REASONS]
    e = html.escape
    creditor, agency = lender.creditor, lender.agency
    items = "".join(f'<li data-code="{e(r.code)}">{e(r.text)}</li>' for r in reasons)
    phone = (
        f'<div class="field">Creditor\'s telephone number: {e(creditor.phone)}</div>'
        if creditor.phone
        else ""
    )
    recorded = record.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Statement of credit denial</title><style>{_STYLE}</style></head>
<body>
<h1>Statement of Credit Denial, Termination or Change</h1>
<div class="field">Date: {e(today.strftime("%B %d, %Y"))}</div>
<div class="field">Applicant's name: <span class="blank"></span></div>
<div class="field">Applicant's address: <span class="blank"></span></div>
<div class="field">Description of account, transaction, or requested credit:
<span class="blank"></span></div>
<div class="field">Description of action taken: <strong id="action">{
        e(lender.action)
    }</strong></div>
<h2>Part I &mdash; Principal reason(s) for credit denial, termination, or other action taken
concerning credit</h2>
<ol class="reasons" id="reasons">{items}</ol>
<h2>Creditor</h2>
<div class="field" id="creditor">{e(creditor.name)}<br>{_lines(creditor.address)}</div>
{phone}
<div class="ecoa" id="ecoa"><strong>ECOA notice.</strong> {e(ECOA_NOTICE)}
<div id="agency">{e(agency.name)}<br>{_lines(agency.address)}</div></div>
<div class="meta">Decision {e(record.request_id)}, applicant {index}, recorded {e(recorded)};
model {e(record.model_version)}{
        f", reason codes {e(record.reason_codes_version)}" if record.reason_codes_version else ""
    }.</div>
</body></html>
"""


def run_notice(args: argparse.Namespace) -> int:
    from .decisions import source_of

    try:
        lender = load_lender(args.lender)
    except LenderConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = source_of(args)
    if source is None:
        return 2
    parts = source.find(args.request_id)
    if not parts:
        print(f"error: no decision {args.request_id} under {source}", file=sys.stderr)
        return source.status(1)
    results = {r.index: (part, r) for part in parts for r in part.results}
    if args.applicant is None and len(results) > 1:
        print(f"error: decision {args.request_id} has {len(results)} applicants: name one with "
              "--applicant N", file=sys.stderr)  # fmt: skip
        return 2
    index = 0 if args.applicant is None else args.applicant
    if index not in results:
        print(f"error: decision {args.request_id} has no applicant {index}", file=sys.stderr)
        return 2
    part, result = results[index]
    if result.decision not in lender.adverse:
        print(f"error: applicant {index} of {args.request_id} was not declined (decision "
              f"{result.decision or 'none recorded'}; adverse: {', '.join(sorted(lender.adverse))})",
              file=sys.stderr)  # fmt: skip
        return 2
    if not result.principal_reasons:
        print(f"error: applicant {index} of {args.request_id} has no recorded reasons",
              file=sys.stderr)  # fmt: skip
        return 2
    page = render_notice(part, index, lender, datetime.now(UTC))
    try:
        Path(args.output).write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote the adverse-action notice for applicant {index} to {args.output}",
          file=sys.stderr)  # fmt: skip
    return source.status()


def register(steps: Any, add_source: Any, *, exit_skipped: int) -> None:
    notice = steps.add_parser(
        "notice",
        help="the adverse-action notice for a declined applicant (HTML, printable; Regulation B "
        "model form C-1)",
        description="Write the adverse-action notice of one recorded applicant whose decision "
        "the lender's file lists as adverse: the recorded principal reasons, the creditor and "
        "the ECOA notice, as one printable HTML page. Exit status: 0, 2 refused or an error, "
        f"{exit_skipped} lines were skipped.",
    )
    notice.add_argument("request_id", help="the API request id")
    add_source(notice)
    notice.add_argument(
        "--applicant",
        type=int,
        metavar="N",
        help="applicant N (0-based) of the request (default: the only one)",
    )
    notice.add_argument(
        "--lender",
        required=True,
        metavar="FILE",
        help="the lender's JSON: creditor name and address, the ECOA agency, adverse decisions",
    )
    notice.add_argument(
        "-o", "--output", default="notice.html", help="HTML file (default: notice.html)"
    )
    notice.set_defaults(func=run_notice)
