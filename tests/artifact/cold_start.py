"""A cold start of the API function: `python -S -B cold_start.py <code dir> [--observe] < event.json`.

Imports app from the code directory (the unpacked zip) in this fresh interpreter
and answers the API Gateway event on stdin through the Lambda handler, as the
first invocation of a new execution environment does. Prints the status code;
with --observe, a JSON line of what the cold start did: modules compiled from
source (none, when the zip's .pyc load), boto3 sessions and clients built, and
whether the X-Ray SDK was imported.

Only the standard library is imported before the code directory is on the path.
"""

from __future__ import annotations

import json
import sys


def observe(code_dir: str) -> dict:
    """Counts compilations, sessions and clients around the import and the request."""
    import importlib._bootstrap_external as external

    seen: dict = {"compiled": [], "sessions": 0, "clients": []}
    source_to_code = external.SourceLoader.source_to_code

    def compiling(self, data, path, *, _optimize=-1):
        if str(path).startswith(code_dir):
            seen["compiled"].append(str(path)[len(code_dir) :])
        return source_to_code(self, data, path, _optimize=_optimize)

    external.SourceLoader.source_to_code = compiling
    import botocore.session

    session_init, create_client = botocore.session.Session.__init__, botocore.session.Session.create_client

    def new_session(self, *args, **kwargs):
        seen["sessions"] += 1
        session_init(self, *args, **kwargs)

    def new_client(self, service_name, *args, **kwargs):
        seen["clients"].append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    botocore.session.Session.__init__ = new_session
    botocore.session.Session.create_client = new_client
    return seen


def main() -> int:
    code_dir = sys.argv[1]
    del sys.path[0]  # this file's directory
    sys.path.insert(0, code_dir)
    seen = observe(code_dir) if "--observe" in sys.argv[2:] else None
    event = json.loads(sys.stdin.read())
    import app

    answer = app.app(event, None)
    if seen is None:
        print(answer["statusCode"])
    else:
        print(json.dumps({**seen, "status": answer["statusCode"], "xray": "aws_xray_sdk" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
