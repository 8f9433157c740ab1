"""Events shaped as AWS documents them, for the handlers of the packaged functions.

- API Gateway REST API, Lambda proxy integration, input format:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
  (headers and multiValueHeaders, queryStringParameters and their multi-value
  twin, pathParameters, requestContext.identity.sourceIp, a body that is
  base64-encoded when isBase64Encoded is true);
- SQS: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html (records from
  tests/support/aws.py; the answer is the partial batch response,
  {"batchItemFailures": [{"itemIdentifier": messageId}]});
- EventBridge scheduled event: https://docs.aws.amazon.com/lambda/latest/dg/with-scheduled-events.html
"""

from __future__ import annotations

import base64
import itertools
import json
import re

ACCOUNT = "123456789012"
API_STAGE = "api"
_ids = itertools.count(1)


def api_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, list[str]] | None = None,
    query: dict[str, list[str]] | None = None,
    body: bytes | None = None,
    source_ip: str = "203.0.113.7",
) -> dict:
    """A REST API proxy event for `resource` (the route template, e.g. /v1/download/status/{job_id}).

    A body is always sent base64-encoded, as API Gateway does for a binary media type.
    """
    parameters = path_parameters or {}
    path = re.sub(r"\{(\w+)\}", lambda match: parameters[match.group(1)], resource)
    multi_headers = {"Host": ["abc123.execute-api.us-east-1.amazonaws.com"], **(headers or {})}
    request_id = f"req-{next(_ids)}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoIdentityId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": "artifact-tier",
                "userArn": None,
            },
            "path": f"/{API_STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": 1700000000000,
            "resourceId": "res123",
            "resourcePath": resource,
            "stage": API_STAGE,
        },
        "body": base64.b64encode(body).decode("ascii") if body is not None else None,
        "isBase64Encoded": body is not None,
    }


def json_body(answer: dict) -> dict:
    """The JSON document of a proxy integration's answer (decoded when it says it is base64)."""
    body = answer["body"]
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return json.loads(body)


def header(answer: dict, name: str) -> str | None:
    """A response header, from headers or multiValueHeaders (Chalice may use either), any case."""
    found = {key.lower(): value for key, value in (answer.get("headers") or {}).items()}
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        found.setdefault(key.lower(), values[-1])
    return found.get(name.lower())


def sqs_event(records: list[dict]) -> dict:
    return {"Records": records}


def scheduled_event(rule: str = "delineate-SweepStalledJobs") -> dict:
    return {
        "version": "0",
        "id": f"53dc4d37-cffa-4f76-80c9-{next(_ids):012d}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2024-01-01T00:05:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }
