"""The broker endpoint: ``GET /v1/members/{member_id}/introductions-to-make?k=N``.

Same rules as the other endpoints: 404 for an unknown member, 422 for a bad ``k`` and for a
member with fewer than two contacts, JSON errors ``{"error", "message", "details"}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse

from recsys import TooFewContactsError
from serving._recommender import Recommender
from serving._schemas import MAX_ID_LENGTH, MAX_K, BrokerSlateOut, error_responses

__all__ = ["add_broker_routes"]


def add_broker_routes(app: FastAPI, recommender: Recommender) -> None:
    """Add ``GET /v1/members/{member_id}/introductions-to-make?k=N`` to ``app`` (a FastAPI app
    serving ``recommender``).
    """

    @app.get(
        "/v1/members/{member_id:path}/introductions-to-make",
        response_model=BrokerSlateOut,
        responses=error_responses(404, 422, 503),
        summary=(
            "Introductions a member could make between their own contacts, "
            "with reasons for both sides"
        ),
        tags=["introductions"],
    )
    def member_introductions_to_make(
        member_id: Annotated[
            str, Path(max_length=MAX_ID_LENGTH, description="The broker's member id")
        ],
        k: Annotated[
            int, Query(ge=1, le=MAX_K, description="How many introductions to list")
        ] = 10,
    ) -> Any:
        try:
            slate = recommender.rank_introductions_to_make(member_id, k)
        except TooFewContactsError as err:
            message = f"{err}"
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "message": message,
                    "details": [{"location": "path.member_id", "problem": message}],
                },
                status_code=422,
            )
        return JSONResponse(slate.to_dict())
