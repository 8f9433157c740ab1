"""A bare EventSource in headless Chromium follows a job on the dev stack through to `completed`.

The script runs on the /app origin, so the page's CSP (connect-src 'self')
applies to it as to the page's own stream. Each response lasts at most the
browser stack's REQUEST_TIMEOUT_MS less a second, so a job of a few files
takes several responses: EventSource's own reconnects, with Last-Event-ID.
"""

from __future__ import annotations

import requests

# Resolves with every event received, once a terminal one arrives (or with what came before an error closed it).
FOLLOW_STREAM = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
const received = [];
const source = new EventSource(path);
let opened = 0;
source.addEventListener("open", () => { opened += 1; });
for (const name of ["connected", "progress", "completed", "failed", "cancelled"]) {
  source.addEventListener(name, (event) => {
    const doc = JSON.parse(event.data);
    const urls = (doc.files || []).filter((file) => file.downloadUrl).length;
    received.push({event: name, id: event.lastEventId, status: doc.status, files: (doc.files || []).length, urls});
    if (["completed", "failed", "cancelled"].includes(name)) {
      source.close();
      done({received, opened});
    }
  });
}
source.addEventListener("error", () => {
  if (source.readyState === EventSource.CLOSED) done({received, opened, closed: true});
});
"""


def test_an_event_source_receives_connected_progress_and_completed(page, dev_stack):
    page.get(dev_stack.url("/app"))
    page.set_script_timeout(60)
    accepted = requests.post(
        dev_stack.url("/v1/download/initiate"), json={"file_ids": [70000, 70007, 70014]}, timeout=10
    )
    job_id = accepted.json()["jobId"]

    result = page.execute_async_script(FOLLOW_STREAM, f"/v1/download/stream/{job_id}?include=files")  # as /app opens it

    names = [event["event"] for event in result["received"]]
    assert names[0] == "connected" and names[-1] == "completed" and "progress" in names
    assert set(names[1:-1]) == {"progress"}
    assert result["opened"] > 1, "one response cannot hold the whole job: EventSource must have reconnected"
    ids = [event["id"] for event in result["received"]]
    assert len(set(ids)) == len(ids) and all(ids)
    assert all(event["files"] == 3 for event in result["received"])
    assert [event["urls"] for event in result["received"][:-1]] == [0] * (len(names) - 1)  # statuses, no URLs
    assert result["received"][-1]["urls"] == 3  # the terminal event: a URL per available file
