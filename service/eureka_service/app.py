"""The job service: a REST API over a `JobBackend`, its OpenAPI document, and the dashboard.

Reads are open unless `protect_reads`; every write needs a bearer token the `Authorizer`
accepts. Request bodies are capped, path parameters validated, and RLJob YAML is checked with
the same loader (and the same messages) as `eureka validate`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from eureka_service.auth import Authorizer, User, bearer_token
from eureka_service.backend import (
    BackendError,
    JobBackend,
    JobDetail,
    JobSummary,
    Metrics,
    ReadOnly,
    Samples,
    Series,
)
from eureka_trainer.config import RLJobError, parse_rljobs
from eureka_trainer.reporting.curves import downsample

log = logging.getLogger(__name__)

STATIC = FilePath(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (an RLJob is a few KiB)."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
NAME_REGEX = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$"
"""Namespaces and job names: DNS-1123 on a cluster; run directory names locally."""

Namespace = Annotated[str, Path(pattern=NAME_REGEX, max_length=253, description="namespace")]
Name = Annotated[str, Path(pattern=NAME_REGEX, max_length=253, description="RLJob name")]
MaxPoints = Annotated[
    int | None,
    Query(alias="maxPoints", ge=2, le=1_000_000, description="downsample each series to this"),
]


class Problem(BaseModel):
    """One mistake in a submitted RLJob (as `eureka validate` prints it)."""

    file: str
    line: int | None
    document: int
    path: str
    message: str


class InvalidJob(BaseModel):
    """Answer to an RLJob that does not validate."""

    detail: str
    problems: list[Problem]


class ServiceInfo(BaseModel):
    """Which backend answers and whether writes can work."""

    backend: str
    writable: bool
    protect_reads: bool


def create_app(
    backend: JobBackend,
    authorizer: Authorizer,
    *,
    protect_reads: bool = False,
    read_only: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The ASGI app: API under /api, dashboard at /, OpenAPI at /api/openapi.json."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()

    app = FastAPI(
        title="Eureka job service",
        version="0.1.0",
        description="RLJobs: list, inspect, curves, samples, submit, suspend, resume, delete.",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI would load its assets from a CDN
        redoc_url=None,
    )
    _add_middleware(app, max_body_bytes)

    @app.exception_handler(BackendError)
    async def backend_error(_: Request, err: BackendError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=headers)

    async def caller(request: Request) -> User:
        return await authorizer.authenticate(bearer_token(request.headers.get("authorization")))

    async def may_read(request: Request, namespace: str | None = None) -> None:
        if protect_reads:
            user = await caller(request)
            await authorizer.authorize(user, "get" if namespace else "list", namespace or "", None)

    def writes_allowed() -> None:
        if read_only:
            raise ReadOnly("writes are disabled on this job service (it runs with --read-only)")

    async def may_write(request: Request, verb: str, namespace: str, name: str | None) -> None:
        writes_allowed()
        await authorizer.authorize(await caller(request), verb, namespace, name)

    @app.get("/api", response_model=ServiceInfo, tags=["service"])
    async def info() -> ServiceInfo:
        writable = backend.writable and not read_only
        return ServiceInfo(backend=backend.kind, writable=writable, protect_reads=protect_reads)

    @app.get("/api/jobs", response_model=list[JobSummary], tags=["jobs"])
    async def list_jobs(request: Request) -> list[JobSummary]:
        await may_read(request)
        return await backend.list_jobs()

    @app.get("/api/jobs/{namespace}/{name}", response_model=JobDetail, tags=["jobs"])
    async def get_job(request: Request, namespace: Namespace, name: Name) -> JobDetail:
        await may_read(request, namespace)
        return await backend.get_job(namespace, name)

    @app.get("/api/jobs/{namespace}/{name}/metrics", response_model=Metrics, tags=["jobs"])
    async def get_metrics(
        request: Request, namespace: Namespace, name: Name, max_points: MaxPoints = None
    ) -> Metrics:
        await may_read(request, namespace)
        metrics = await backend.get_metrics(namespace, name)
        if max_points is not None:
            metrics = _downsampled(metrics, max_points)
        return metrics

    @app.get("/api/jobs/{namespace}/{name}/samples", response_model=Samples, tags=["jobs"])
    async def get_samples(request: Request, namespace: Namespace, name: Name) -> Samples:
        await may_read(request, namespace)
        return await backend.get_samples(namespace, name)

    @app.post(
        "/api/jobs",
        status_code=201,
        response_model=JobSummary,
        tags=["jobs"],
        responses={422: {"model": InvalidJob}, 401: {}, 403: {}, 405: {}, 409: {}, 413: {}},
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/yaml": {"schema": {}}}}
        },
    )
    async def create_job(request: Request) -> Any:
        writes_allowed()
        user = await caller(request)  # authenticate before reading anything
        text = await _read_text(request, max_body_bytes)
        try:
            jobs = parse_rljobs(text, "<request>")
        except RLJobError as err:
            return _invalid(err)
        if len(jobs) != 1:
            return JSONResponse({"detail": f"expected 1 RLJob, found {len(jobs)}"}, 422)
        job = jobs[0].model_dump(by_alias=True, mode="json", exclude_none=True)
        namespace = jobs[0].metadata.namespace or backend.default_namespace
        await authorizer.authorize(user, "create", namespace, None)
        return await backend.create(job)

    @app.post("/api/jobs/{namespace}/{name}/suspend", response_model=JobSummary, tags=["jobs"])
    async def suspend(request: Request, namespace: Namespace, name: Name) -> JobSummary:
        await may_write(request, "patch", namespace, name)
        return await backend.set_suspend(namespace, name, True)

    @app.post("/api/jobs/{namespace}/{name}/resume", response_model=JobSummary, tags=["jobs"])
    async def resume(request: Request, namespace: Namespace, name: Name) -> JobSummary:
        await may_write(request, "patch", namespace, name)
        return await backend.set_suspend(namespace, name, False)

    @app.delete("/api/jobs/{namespace}/{name}", status_code=204, tags=["jobs"])
    async def delete(request: Request, namespace: Namespace, name: Name) -> Response:
        await may_write(request, "delete", namespace, name)
        await backend.delete(namespace, name)
        return Response(status_code=204)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ready = backend.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_middleware(app: FastAPI, max_body_bytes: int) -> None:
    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            response: Response = JSONResponse(
                {"detail": f"request body larger than {max_body_bytes} bytes"}, 413
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api"):
            response.headers["Cache-Control"] = "no-store"
        return response


async def _read_text(request: Request, limit: int) -> str:
    """The body as UTF-8 text, at most `limit` bytes even when sent chunked."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(400, f"the body is not UTF-8 text: {err}") from None


def _downsampled(metrics: Metrics, max_points: int) -> Metrics:
    """Every series cut to `max_points` evenly strided points (first and last kept)."""
    series = {}
    for key, curve in metrics.series.items():
        steps, values = downsample(curve.steps, curve.values, max_points)
        series[key] = Series(steps=steps, values=values)
    return Metrics(series=series)


def _invalid(err: RLJobError) -> JSONResponse:
    problems = [Problem(**vars(p)).model_dump() for p in err.problems]
    return JSONResponse({"detail": str(err), "problems": problems}, status_code=422)
