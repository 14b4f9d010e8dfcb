"""The job service: a REST API over a `JobBackend`, its OpenAPI document, and the dashboard.

Reads are open unless `protect_reads`; every write needs a bearer token the `Authorizer`
accepts. Request bodies are capped, path parameters validated, and RLJob YAML is checked with
the same loader (and the same messages) as `eureka validate`: after the caller is authorised,
off the event loop, with alias expansion bounded (`eureka_trainer.config.loader.MAX_NODES`).
Requests naming a foreign `Host` are refused (DNS rebinding: a web page on another site whose
name resolves to this loopback server would otherwise read it with open reads). GET answers of
the API carry an ETag (a poll that changed nothing costs a 304) and are gzip-compressed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import yaml
from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.middleware.gzip import GZipMiddleware

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
    select_samples,
)
from eureka_service.hosts import HostCheck
from eureka_trainer.config import RLJob, RLJobError, parse_rljobs
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
PARSE_SLOTS = 2
"""RLJob bodies parsed at once (each in a worker thread): a flood of them waits, never the loop."""
NAME_REGEX = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$"
"""Namespaces and job names: DNS-1123 on a cluster; run directory names locally."""

Namespace = Annotated[str, Path(pattern=NAME_REGEX, max_length=253, description="namespace")]
Name = Annotated[str, Path(pattern=NAME_REGEX, max_length=253, description="RLJob name")]
SampleFilter = Annotated[
    str | None,
    Query(pattern="^(correct|wrong|reflective)$", description="correct, wrong or reflective"),
]
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
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The ASGI app: API under /api, dashboard at /, OpenAPI at /api/openapi.json.

    `allowed_hosts`: names the `Host` header may carry besides the loopback ones (`*`: any).
    """
    parse_slots = asyncio.Semaphore(PARSE_SLOTS)

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
    _add_middleware(app, max_body_bytes, HostCheck(allowed_hosts))

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
    async def get_samples(
        request: Request,
        namespace: Namespace,
        name: Name,
        step: Annotated[int | None, Query(ge=0, description="only this step")] = None,
        kind: SampleFilter = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 50,
    ) -> Samples:
        await may_read(request, namespace)
        return select_samples(await backend.get_samples(namespace, name), step, kind, limit)

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
    async def create_job(
        request: Request,
        namespace: Annotated[
            str | None,
            Query(pattern=NAME_REGEX, max_length=253, description="namespace to create it in"),
        ] = None,
    ) -> Any:
        writes_allowed()
        # Authenticated before the body is read, authorised before it is parsed: the namespace
        # comes from the query, else from the body's composed YAML (no alias is expanded and
        # nothing is built), else the default. An anonymous caller or one without `create`
        # there never buys the parse and validation.
        user = await caller(request)
        if namespace is not None:
            await authorizer.authorize(user, "create", namespace, None)
        text = await _read_text(request, max_body_bytes)
        async with parse_slots:
            declared = await asyncio.to_thread(declared_namespace, text)
        if namespace is not None and declared is not None and declared != namespace:
            return JSONResponse(
                {"detail": f"the RLJob names namespace {declared!r}, the query {namespace!r}"},
                422,
            )
        target = namespace or declared or backend.default_namespace
        if namespace is None:
            await authorizer.authorize(user, "create", target, None)
        async with parse_slots:
            parsed = await asyncio.to_thread(_parse_one, text)
        if isinstance(parsed, JSONResponse):
            return parsed
        if parsed.metadata.namespace is None:
            parsed.metadata.namespace = target
        job = parsed.model_dump(by_alias=True, mode="json", exclude_none=True)
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


def _add_middleware(app: FastAPI, max_body_bytes: int, hosts: HostCheck) -> None:
    # Starlette runs the middleware added last first: guard, then gzip, then the ETag (which
    # hashes the uncompressed body, so the tag does not depend on the encoding).
    @app.middleware("http")
    async def etag(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.method != "GET" or not request.url.path.startswith("/api"):
            return response
        if response.status_code != 200:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        # Weak: the same tag covers the gzip and the identity encoding (RFC 9110 8.8.1).
        headers["ETag"] = "W/" + tag
        if tag in _tags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
        return Response(body, status_code=200, headers=headers)

    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        refusal = hosts.refusal(request.headers.get("host"), request.url.path)
        if refusal is not None:
            response: Response = JSONResponse({"detail": refusal}, 421)
        elif length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            response = JSONResponse(
                {"detail": f"request body larger than {max_body_bytes} bytes"}, 413
            )
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api"):
            # Kept, but revalidated on every use (If-None-Match); never shared by proxies.
            response.headers["Cache-Control"] = "private, no-cache"
            response.headers["Vary"] = "Authorization, Accept-Encoding"
        return response


def _tags(header: str | None) -> set[str]:
    """Entity tags of an If-None-Match header (weak ones compare equal, RFC 9110 13.1.2)."""
    if not header:
        return set()
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def declared_namespace(text: str) -> str | None:
    """`metadata.namespace` of the first YAML document, read from its nodes (None: none given,
    or not YAML; the parse that follows reports that)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for key, value in _pairs(node):
        if key == "metadata":
            for inner, found in _pairs(value):
                if inner == "namespace" and isinstance(found, yaml.ScalarNode):
                    return str(found.value) or None
    return None


def _pairs(node: yaml.Node | None) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(k.value), v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _parse_one(text: str) -> RLJob | JSONResponse:
    """The single RLJob of a request body, or the 422 answer (runs in a worker thread)."""
    try:
        jobs = parse_rljobs(text, "<request>")
    except RLJobError as err:
        return _invalid(err)
    if len(jobs) != 1:
        return JSONResponse({"detail": f"expected 1 RLJob, found {len(jobs)}"}, 422)
    return jobs[0]


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
        series[key] = Series(steps=steps, values=values, nonfinite=curve.nonfinite)
    return Metrics(series=series)


def _invalid(err: RLJobError) -> JSONResponse:
    problems = [Problem(**vars(p)).model_dump() for p in err.problems]
    return JSONResponse({"detail": str(err), "problems": problems}, status_code=422)
