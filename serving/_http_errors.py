"""The HTTP service's errors: every one is JSON ``{"error": CODE, "message": TEXT, "details":
[...]}``.

:func:`install_error_handlers` maps the in-process API's errors to their status (unknown member
404, no model 503, unknown interests 422), FastAPI's validation errors and malformed bodies to
422 naming the field and the problem (never echoing the input), other HTTP errors to their own
code, and anything unexpected to a 500 that gives only the kind of failure (it is logged).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving._types import (
    ColdStartUnavailableError,
    ModelNotLoadedError,
    UnknownInterestsError,
    UnknownMemberError,
)

__all__ = ["InvalidRequest", "install_error_handlers"]

logger = logging.getLogger(__name__)


class InvalidRequest(Exception):
    """A request the models cannot reject by themselves (HTTP 422); ``location`` names the part."""

    def __init__(self, message: str, location: str):
        super().__init__(message)
        self.location = location


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    414: "uri_too_long",
    501: "not_implemented",
}


def _error(
    status: int, code: str, message: str, details: list | None = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message, "details": details or []},
        status_code=status,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownMemberError)
    async def _unknown_member(request: Request, exc: UnknownMemberError):
        return _error(404, "not_found", str(exc))

    @app.exception_handler(ModelNotLoadedError)
    async def _not_loaded(request: Request, exc: ModelNotLoadedError):
        return _error(503, "not_ready", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(ColdStartUnavailableError)
    async def _no_cold_start(request: Request, exc: ColdStartUnavailableError):
        return _error(501, "not_implemented", str(exc))

    @app.exception_handler(UnknownInterestsError)
    async def _unknown_interests(request: Request, exc: UnknownInterestsError):
        return _error(
            422, "invalid_request", str(exc), [{"location": "body.interests", "problem": str(exc)}]
        )

    @app.exception_handler(InvalidRequest)
    async def _invalid(request: Request, exc: InvalidRequest):
        return _error(
            422, "invalid_request", str(exc), [{"location": exc.location, "problem": str(exc)}]
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # name the field and the problem; never echo the input back (it may be long or odd)
        details = [
            {
                "location": ".".join(str(p) for p in err.get("loc", ())),
                "problem": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        summary = (
            "; ".join(f"{d['location']}: {d['problem']}" for d in details[:3]) or "invalid request"
        )
        return _error(422, "invalid_request", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if (
            exc.status_code == 400
            # FastAPI's "error parsing the body": a malformed body, like every other bad input, is
            # 422
        ):
            return _error(
                422,
                "invalid_request",
                "invalid request: the body is not valid JSON",
                [{"location": "body", "problem": "not valid JSON"}],
            )
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return _error(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # no message from inside the model: only the kind of failure, logged with the route
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(
            500, "internal_error", f"internal error ({type(exc).__name__}); it was logged"
        )
