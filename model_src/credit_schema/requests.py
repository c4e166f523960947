"""The canonical scoring request: every accepted payload shape normalises to it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .applicant import Applicant


class ScoreRequest(BaseModel):
    """``{"instances": [Applicant, ...]}``: what ``POST /score`` validates after normalisation.

    Callers may send any shape :func:`credit_schema.parse_json_applicants` accepts
    (one object, records, pandas column/index/split orient, ``{"instances": ...}``,
    double-encoded JSON); this is the one they are all turned into.
    """

    model_config = ConfigDict(extra="forbid", title="ScoreRequest")

    instances: list[Applicant] = Field(
        min_length=1, description="The applicants to score, in request order."
    )
