"""The scheduled sweeper, on one machine: calls app.sweep_stalled_jobs every interval.

Run as its own process: python -m chalicelib.local.sweeper
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("delineate.sweeper")


def scheduled_event() -> dict:
    """The EventBridge event shape a scheduled Lambda receives."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": now,
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": [],
        "detail": {},
    }


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s sweeper[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    import app as chalice_app

    interval = float(os.environ.get("SWEEP_INTERVAL_SECONDS", "30"))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(interval):
        try:
            chalice_app.sweep_stalled_jobs(scheduled_event(), None)
        except (BotoCoreError, ClientError) as exc:
            log.warning("sweep skipped: %s", exc)


if __name__ == "__main__":
    main()
