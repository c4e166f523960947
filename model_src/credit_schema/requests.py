"""The canonical scoring request: every accepted payload shape normalises to it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from .applicant import Applicant
from .schema import ApplicantSchema


class ScoreRequest(BaseModel):
    """``{"instances": [Applicant, ...]}``: what ``POST /score`` validates after normalisation.

    Callers may send any shape :func:`credit_schema.parse_json_applicants` accepts
    (one object, records, pandas column/index/split orient, ``{"instances": ...}``,
    double-encoded JSON); this is the one they are all turned into.
    """

    model_config = ConfigDict(extra="forbid", title="ScoreRequest")

    instances: list[Applicant] = Field(  # type: ignore[valid-type]
        min_length=1, description="The applicants to score, in request order."
    )


def score_request_model(schema: ApplicantSchema) -> type[BaseModel]:
    """:class:`ScoreRequest` for another schema's applicants (its OpenAPI request body)."""
    fields: dict[str, Any] = {
        "instances": (
            list[schema.model],  # type: ignore[name-defined]
            Field(min_length=1, description="The applicants to score, in request order."),
        )
    }
    return create_model(
        "ScoreRequest", __config__=ScoreRequest.model_config, __doc__=ScoreRequest.__doc__, **fields
    )
