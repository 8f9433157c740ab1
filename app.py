"""Delineate: routes and event handlers only. The domain lives in chalicelib/."""

from __future__ import annotations

import os

from chalice import Chalice, Rate, Response
from chalice.app import Request

from chalicelib import metrics, runtime
from chalicelib.api import http, live, openapi, webapp
from chalicelib.api.validation import (
    parse_include,
    parse_initiate,
    parse_job_id,
    parse_list_query,
    parse_single_file,
    parse_volume,
)

# configure_logs=False: Chalice would add its own plain-text handler to the
# "delineate" logger, printing every event a second time (chalicelib/logs.py).
app = Chalice(app_name="delineate", configure_logs=False)
app.api.cors = http.cors_config(runtime.settings().cors_origins)
# Every invocation's metrics leave as one EMF line when it ends (chalicelib/metrics.py); registered
# first, so it wraps the HTTP middleware and counts the 429s and 503s that middleware answers.
app.register_middleware(metrics.flush_after, "all")
app.register_middleware(http.api_middleware(runtime.settings, runtime.rate_limiter, runtime.authenticator), "http")

JSON = ["application/json"]
# The queue name is a placeholder for the deployment descriptor: the merge
# template (infra/) points the event source at the stack's own WorkQueue ARN.
WORK_QUEUE_NAME = os.environ.get("WORK_QUEUE_NAME", "delineate-work")


def current_request() -> Request:
    """The request a route is answering: Chalice sets it before calling the route."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request: called outside a route")
    return request


def requested_files(request: Request) -> bool:
    """`?include=files`: whether the status document carries the per-file list."""
    query = request.query_params
    return parse_include(query.get("include") if query is not None else None)


@app.route("/", methods=["GET"])
def index():
    return {"service": "delineate", "version": runtime.settings().version, "docs": "/docs"}


@app.route("/openapi.json", methods=["GET"])
def openapi_document():
    return openapi.document_response()


@app.route("/docs", methods=["GET"])
def docs():
    return openapi.docs_response()


@app.route("/app", methods=["GET"])
def web_app():
    return webapp.app_response(runtime.service().download_origin())


@app.route("/health", methods=["GET"])
def health():
    healthy, checks = runtime.service().health()
    body = {"status": "healthy" if healthy else "unhealthy", "checks": checks}
    return Response(body=body, status_code=200 if healthy else 503)


@app.route("/v1/download/initiate", methods=["POST"], content_types=JSON)
def initiate():
    request = current_request()
    parsed = parse_initiate(
        request.raw_body,
        request.headers.get("idempotency-key"),
        runtime.settings().max_body_bytes,
    )
    job, created = runtime.service().initiate(parsed, http.caller(request))
    return http.accepted(runtime.service().accepted_document(job), created)


@app.route("/v1/download/status/{job_id}", methods=["GET"])
def job_status(job_id):
    request = current_request()
    include_files = requested_files(request)
    condition = live.condition_from(request.headers)
    watched = runtime.service().watch_status(parse_job_id(job_id), include_files, condition, http.caller(request))
    return live.status_response(watched, runtime.settings().status_retry_after_seconds)


@app.route("/v1/download/stream/{job_id}", methods=["GET"])
def job_stream(job_id):
    request = current_request()
    include_files = requested_files(request)
    last_event_id = request.headers.get("last-event-id")
    body = runtime.service().stream(parse_job_id(job_id), include_files, last_event_id, http.caller(request))
    return live.stream_response(body)


# A literal path: API Gateway and `chalice local` prefer it to /v1/download/{job_id}.
@app.route("/v1/download/jobs", methods=["GET"])
def list_jobs():
    request = current_request()
    limit, cursor, status = parse_list_query(request.query_params)
    return http.listing_response(runtime.service().list_jobs(http.caller(request), limit, cursor, status))


@app.route("/v1/download/{job_id}", methods=["GET"])
def download(job_id):
    request = current_request()
    query = request.query_params
    volume = parse_volume(query.get("volume") if query is not None else None)
    return http.redirect(runtime.service().result_url(parse_job_id(job_id), http.caller(request), volume))


@app.route("/v1/download/{job_id}", methods=["DELETE"])
def cancel(job_id):
    return runtime.service().cancel(parse_job_id(job_id), http.caller(current_request()))


@app.route("/v1/download/check", methods=["POST"], content_types=JSON)
def check():
    file_id = parse_single_file(current_request().raw_body, runtime.settings().max_body_bytes)
    return runtime.service().check(file_id)


@app.route("/v1/download/start", methods=["POST"], content_types=JSON)
def start():
    request = current_request()
    file_id = parse_single_file(request.raw_body, runtime.settings().max_body_bytes)
    finished, document = runtime.service().start(file_id, http.caller(request))
    if finished:
        return document
    return http.accepted(document, created=True)


# API Gateway REST (and `chalice local`) answer an unknown path with 403
# "Missing Authentication Token" and skip middleware. Catch-all routes at each
# depth turn that into a 404 with our shape and headers; paths deeper than
# this are reshaped in the cloud by the GatewayResponse in infra/.
_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
for _depth in range(1, http.CATCH_ALL_DEPTH + 1):
    _path = "".join(f"/{{p{i}}}" for i in range(_depth))
    app.route(_path, methods=_ANY, name=f"not_found_{_depth}")(http.not_found)


# With a list in CORS_ORIGINS, preflights are answered here (see http.cors_config).
http.add_preflight_routes(app, runtime.settings().cors_origins)


@app.on_sqs_message(queue=WORK_QUEUE_NAME, batch_size=1)
def process_work(event):
    """Lambda-style SQS handler; returns batchItemFailures (partial batch response)."""
    return runtime.worker().handle_batch(record.to_dict() for record in event)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def sweep_stalled_jobs(event):
    """Finds jobs whose work went missing and resumes or fails them."""
    return runtime.sweeper().sweep()
