"""The HTTP service (DESIGN.md, "HTTP service"): FastAPI over a :class:`serving.Recommender`.

Endpoints
---------
``GET  /v1/members/{member_id}/introductions?k=N&exclude=a,b``  one member's slate, with reasons
``POST /v1/introductions:batch``       ``{"member_ids": [...], "k": N}``: many slates at once
``POST /v1/introductions:cold-start``  ``{"interests": [...], "k": N}``: a slate for someone the
model has not seen
``GET  /v1/members/{member_id}/introductions-to-make?k=N``  pairs of the member's contacts to
introduce to each other (``serving._broker_routes``)
``GET  /healthz``                      the process is alive
``GET  /readyz``                       200 with the model version once a model serves, else 503;
shows the last reload error
``POST /admin/reload``                 look for a new model version now (needs
``PLUSONE_ADMIN_TOKEN``; absent → 404)
``GET  /openapi.json``, ``/docs``      the OpenAPI document

Every error is JSON ``{"error": CODE, "message": TEXT, "details": [...]}``
(``serving._http_errors``); the bodies are the pydantic models of ``serving._schemas``. Nothing
in a response, log line or error message carries a sensitive attribute: the model holds none.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import logging
import os
import sys
import threading
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving._broker_routes import add_broker_routes
from serving._http_errors import InvalidRequest, install_error_handlers
from serving._recommender import Recommender
from serving._schemas import (
    MAX_BATCH,
    MAX_EXCLUDE,
    MAX_ID_LENGTH,
    MAX_INTERESTS,
    MAX_K,
    BatchIn,
    BatchOut,
    ColdStartIn,
    HealthOut,
    ReadyOut,
    ReloadOut,
    SlateOut,
    error_responses,
)

__all__ = [
    "MAX_BATCH",
    "MAX_EXCLUDE",
    "MAX_INTERESTS",
    "MAX_K",
    "check_environment",
    "create_app",
    "serve",
]

logger = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "PLUSONE_ADMIN_TOKEN"


# ---------------------------------------------------------------------------------- app
def create_app(
    model_source: str | os.PathLike | Recommender,
    *,
    poll_seconds: float = 0,
    admin_token: str | None = None,
    cache_size: int = 20_000,
    warm_on_reload: int = 2_000,
    precompute: int | str = 0,
) -> FastAPI:
    """The FastAPI application serving ``model_source`` (a model directory, an MLflow model URI or
    a Recommender).

    The model is loaded here, before the app is returned; if it cannot be, the app still starts,
    answers 503 and keeps looking for it every ``poll_seconds``. With ``poll_seconds > 0`` a
    background thread (started with the app's lifespan) follows the source and swaps in new
    versions. ``admin_token`` (default: the ``PLUSONE_ADMIN_TOKEN`` environment variable) enables
    ``POST /admin/reload``. ``cache_size``, ``warm_on_reload`` and ``precompute``: see
    :class:`serving.Recommender`.
    """
    if isinstance(model_source, Recommender):
        recommender = model_source
    else:
        recommender = Recommender(
            model_source,
            cache_size=cache_size,
            warm_on_reload=warm_on_reload,
            precompute=precompute,
        )
        recommender.reload()  # a failure is logged and shows in /readyz; the poller keeps trying
    token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV) or None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        poller = _Poller(recommender, poll_seconds) if poll_seconds and poll_seconds > 0 else None
        if poller:
            poller.start()
        try:
            yield
        finally:
            if poller:
                poller.stop()

    app = FastAPI(
        title="Plus One",
        summary="Introductions that widen people's networks, with the reasons",
        version="1",
        lifespan=lifespan,
    )
    app.state.recommender = recommender
    install_error_handlers(app)

    # {member_id:path}: an id may hold "/" (sent percent-encoded, decoded before routing)
    @app.get(
        "/v1/members/{member_id:path}/introductions",
        response_model=SlateOut,
        responses=error_responses(404, 422, 503),
        summary="A member's slate of introductions, with reasons",
        tags=["introductions"],
    )
    async def member_introductions(
        member_id: Annotated[str, Path(max_length=MAX_ID_LENGTH, description="The member's id")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="Slate size")] = 20,
        exclude: Annotated[
            str | None,
            Query(
                max_length=MAX_EXCLUDE * (MAX_ID_LENGTH + 1),
                description=f"Comma-separated member ids not to propose (at most {MAX_EXCLUDE})",
            ),
        ] = None,
    ) -> Any:
        skip = [x for x in (exclude or "").split(",") if x]
        if len(skip) > MAX_EXCLUDE:
            raise InvalidRequest(
                f"exclude lists {len(skip)} members; at most {MAX_EXCLUDE} are allowed",
                "query.exclude",
            )
        # a cached slate is answered here on the event loop; ranking (milliseconds) goes to a
        # thread
        text = recommender.rank_json(member_id, k, exclude=skip, cached_only=True)
        if text is None:
            text = await run_in_threadpool(recommender.rank_json, member_id, k, exclude=skip)
        return Response(text, media_type="application/json")

    @app.post(
        "/v1/introductions:batch",
        response_model=BatchOut,
        responses=error_responses(422, 503),
        summary="Slates for many members; members the model does not know are listed, not ranked",
        tags=["introductions"],
    )
    def batch_introductions(body: BatchIn) -> Any:
        slates = recommender.rank_batch(body.member_ids, body.k, on_unknown="skip")
        answered = {s.member_id for s in slates}
        unknown = list(dict.fromkeys(m for m in body.member_ids if m not in answered))
        version = slates[0].model_version if slates else recommender.model_version
        return JSONResponse(
            {
                "slates": [
                    {
                        "member_id": s.member_id,
                        "introductions": [i.to_dict() for i in s.introductions],
                    }
                    for s in slates
                ],
                "unknown_member_ids": unknown,
                "model_version": version,
            }
        )

    @app.post(
        "/v1/introductions:cold-start",
        response_model=SlateOut,
        responses=error_responses(
            422,
            501,
            503,
            descriptions={
                422: "Invalid body, or none of the interests is known to the model",
                501: "The model serving has no interest-based candidates, so no cold start",
            },
        ),
        summary="A slate for someone the model has not seen, from their interests",
        tags=["introductions"],
    )
    def cold_start(body: ColdStartIn) -> Any:
        return JSONResponse(recommender.rank_cold_start(body.interests, body.k).to_dict())

    add_broker_routes(app, recommender)

    @app.get(
        "/healthz", response_model=HealthOut, summary="The process is alive", tags=["operations"]
    )
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=ReadyOut,
        responses={
            503: {
                "model": ReadyOut,
                "description": "No model is loaded, or its precomputed table is still being built",
            }
        },
        summary="Ready once a model serves (and its precomputed table, when one is asked for, is "
        "built); shows the version and the last failed reload",
        tags=["operations"],
    )
    def readyz() -> Any:
        status = recommender.status()
        if status["model_version"] is None:
            state = "not_ready"
        elif status["precompute"] and status["precompute"]["state"] in ("ranking", "explaining"):
            # answers are ranked on request meanwhile, at a fraction of the table's rate: a load
            # balancer should send this instance its share of traffic once the table is built
            state = "warming"
        else:
            state = "ready"
        return JSONResponse(
            {"status": state, **status}, status_code=200 if state == "ready" else 503
        )

    if token:

        @app.post(
            "/admin/reload",
            response_model=ReloadOut,
            responses=error_responses(401, 403, 409),
            summary="Look for a new model version now (Authorization: Bearer PLUSONE_ADMIN_TOKEN)",
            tags=["operations"],
        )
        def admin_reload(
            authorization: Annotated[str | None, Header()] = None,
            force: Annotated[
                bool, Query(description="Reload even if the version looks unchanged")
            ] = False,
        ) -> Any:
            if not authorization:
                raise StarletteHTTPException(
                    401, "this endpoint needs 'Authorization: Bearer <admin token>'"
                )
            scheme, _, given = authorization.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                raise StarletteHTTPException(403, "wrong admin token")
            # one reload at a time: a request that finds one running is answered at once
            result = recommender.reload(force=force, wait=False)
            if result.busy:
                return JSONResponse(
                    {
                        "error": "conflict",
                        "message": "a reload is already running; ask again when it is done",
                        "details": [],
                    },
                    status_code=409,
                )
            if result.swapped:
                _after_swap()
            error = recommender.last_reload_error
            if not result.swapped and error is not None:
                return JSONResponse(
                    {
                        "error": "reload_failed",
                        "message": (
                            f"the new model failed to load ({error.message}); "
                            f"still serving {result.model_version}"
                        ),
                        "details": [],
                    },
                    status_code=409,
                )
            return {
                "reloaded": result.swapped,
                "model_version": result.model_version,
                "previous_version": result.previous_version,
            }

    return app


# ---------------------------------------------------------------------------------- reload
class _Poller:
    """A daemon thread that asks the recommender to reload every ``seconds`` (it loads only new
    versions).
    """

    def __init__(self, recommender: Recommender, seconds: float):
        self.recommender = recommender
        self.seconds = float(seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plusone-model-poller", daemon=True)

    def start(self) -> None:
        logger.info(
            "following %s for new model versions every %gs", self.recommender.source, self.seconds
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                if self.recommender.reload().swapped:
                    _after_swap()
            except (
                Exception
            ):  # reload records its own failures; this is a last guard for the thread
                logger.exception("model poll failed")


# ---------------------------------------------------------------------------------- serve
MODEL_SOURCE_ENV = "PLUSONE_MODEL_SOURCE"
POLL_SECONDS_ENV = "PLUSONE_POLL_SECONDS"
WORKERS_ENV = "PLUSONE_WORKERS"
CACHE_SIZE_ENV = "PLUSONE_CACHE_SIZE"
WARM_ENV = "PLUSONE_WARM_ON_RELOAD"
PRECOMPUTE_ENV = "PLUSONE_PRECOMPUTE"
ACCESS_LOG_ENV = "PLUSONE_ACCESS_LOG"


#: Worker processes start with no logging set up: this gives them (and the single process) one
#: format on stderr.
_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"}
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
        "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "uvicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        "mlflow": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "alembic": {"level": "WARNING"},
    },
}


def _settle_for_serving() -> None:
    """Process-wide settings for a serving process (not for an app embedded elsewhere).

    The interpreter hands over every millisecond (default 5), so a reload's work in the
    background thread delays a request less; and what is loaded by now (modules, the first
    model) moves out of the garbage collector's full passes, which would otherwise walk it all
    every few thousand requests.
    """
    global _FREEZE_AFTER_SWAP
    sys.setswitchinterval(0.001)
    gc.collect()
    gc.freeze()
    _FREEZE_AFTER_SWAP = True


#: Set in a serving process: each new model version is frozen too once it serves (a dropped
#: version has no reference cycles, so freezing never keeps one alive).
_FREEZE_AFTER_SWAP = False


def _after_swap() -> None:
    if _FREEZE_AFTER_SWAP:
        gc.freeze()


def _env_number(name: str, default: str, *, kind: type = int, minimum: float = 0) -> Any:
    """``$name`` as a number of ``kind`` at least ``minimum``; else a ValueError naming it."""
    text = os.environ.get(name, default).strip()
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum or value in (float("inf"),):
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name}: expected {what} of at least {minimum:g}, got {text[:40]!r}")
    return value


def check_environment() -> dict[str, Any]:
    """The service's settings from its ``PLUSONE_*`` environment variables, each checked (a
    bad one is a ValueError naming it, before any worker starts)."""
    return {
        "cache_size": _env_number(CACHE_SIZE_ENV, "20000"),
        "warm_on_reload": _env_number(WARM_ENV, "2000"),
        "precompute": parse_precompute(os.environ.get(PRECOMPUTE_ENV, "0"), PRECOMPUTE_ENV),
        "workers": _env_number(WORKERS_ENV, "1", minimum=1),
        "poll_seconds": _env_number(POLL_SECONDS_ENV, "0", kind=float),
    }


def _app_kwargs() -> dict[str, Any]:
    settings = check_environment()
    return {name: settings[name] for name in ("cache_size", "warm_on_reload", "precompute")}


def parse_precompute(text: str, where: str) -> int | str:
    """``all`` or a whole number of members, as ``--precompute`` and ``PLUSONE_PRECOMPUTE`` take
    it.
    """
    text = text.strip().lower()
    if text == "all":
        return "all"
    if not text.isdigit():
        raise ValueError(f"{where}: expected 'all' or a whole number of members, got {text!r}")
    return int(text)


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers (``uvicorn --factory serving.app:app_from_env``): the source
    comes from the environment.
    """
    source = os.environ.get(MODEL_SOURCE_ENV)
    if not source:
        raise RuntimeError(
            f"{MODEL_SOURCE_ENV} is not set: it names the model directory or MLflow model "
            "URI to serve"
        )
    app = create_app(source, poll_seconds=check_environment()["poll_seconds"], **_app_kwargs())
    _settle_for_serving()
    return app


def serve(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    poll_seconds: float = 30.0,
    workers: int | None = None,
    access_log: bool | None = None,
) -> None:
    """Run the service with uvicorn (what ``recsys serve`` does); blocks until stopped.

    ``workers`` (default: ``PLUSONE_WORKERS`` or 1) processes each load the model and follow the
    source on their own. ``access_log`` (default: ``PLUSONE_ACCESS_LOG``, on unless ``0``) logs
    one line per request (method, path, status). ``PLUSONE_CACHE_SIZE`` and
    ``PLUSONE_WARM_ON_RELOAD`` set the slate cache, ``PLUSONE_PRECOMPUTE`` (``all`` or a number
    of members) the precomputed slate table (see :class:`serving.Recommender`).
    """
    import uvicorn

    # requests bring the concurrency: one thread per BLAS / OpenMP pool keeps the cores for them
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    n_workers = workers if workers is not None else check_environment()["workers"]
    log_requests = (
        access_log if access_log is not None else os.environ.get(ACCESS_LOG_ENV, "1") != "0"
    )
    common = dict(
        host=host,
        port=port,
        access_log=log_requests,
        log_config=_LOG_CONFIG,
        timeout_graceful_shutdown=10,
    )
    if n_workers > 1:
        os.environ[MODEL_SOURCE_ENV] = str(model)
        os.environ[POLL_SECONDS_ENV] = str(poll_seconds)
        uvicorn.run("serving.app:app_from_env", factory=True, workers=n_workers, **common)
    else:
        app = create_app(model, poll_seconds=poll_seconds, **_app_kwargs())
        _settle_for_serving()
        uvicorn.run(app, **common)
