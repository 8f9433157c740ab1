
"use strict";
// The /app page: start a download job, watch it, cancel it, fetch the bundle.
// The job id lives in the URL (/app?job=<id>), so a reload or a shared link shows the same job.
// Served inline and allowed by its hash (chalicelib/api/webapp.py): no other script, no network but the API
// and, to verify a zip (verify.js), the bucket's presigned URLs.
(() => {
  const API = "/v1/download";
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const FILE_ID_MIN = 10000, FILE_ID_MAX = 100000000, MAX_FILES = 1000;
  const KEY_STORAGE = "delineate.apiKey";
  const DEFAULT_POLL_SECONDS = 2, MAX_WAIT_SECONDS = 60;
  const $ = (id) => document.getElementById(id);

  // -- transport: one function talks to the API ------------------------------------------------

  function authHeaders() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function retryAfterSeconds(header) {
    const seconds = Number.parseInt(header ?? "", 10);
    return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, MAX_WAIT_SECONDS) : null;
  }

  // Resolves to {status, body, retryAfter}; status 0 means the API could not be reached.
  async function api(method, path, body, headers = {}) {
    const init = { method, cache: "no-store", headers: { Accept: "application/json", ...authHeaders(), ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      return { status: 0, body: null, retryAfter: null };
    }
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    return { status: response.status, body: parsed, retryAfter: retryAfterSeconds(response.headers.get("Retry-After")) };
  }

  function seconds(n) {
    return n === 1 ? "1 second" : `${n} seconds`;
  }

  // What to tell the user when a call did not work; `doing` is e.g. "starting the download".
  function problemText(result, doing) {
    const detail = result.body && result.body.message ? ` (${result.body.message})` : "";
    const wait = result.retryAfter;
    switch (result.status) {
      case 0:
        return `Cannot reach the service while ${doing}. Check your connection.`;
      case 429:
        return `Too many requests: the service asks to wait ${seconds(wait ?? 1)} before ${doing}.`;
      case 503:
        return `The service is temporarily unavailable${detail} while ${doing}.`;
      case 400:
        return `The service refused the request${detail}.`;
      case 401:
      case 403:
        return `Not allowed${detail}. Check the API key.`;
      default:
        return `Something went wrong while ${doing}: HTTP ${result.status}${detail}.`;
    }
  }

  // -- status sources ---------------------------------------------------------------------------
  // A source reports to a sink: sink.update(statusDocument) for each document, sink.problem(text,
  // kind) when it cannot get one, sink.gone(text) when it never will. It stops by itself after a
  // terminal document and returns {stop}. The stream (GET /v1/download/stream/{id}, allowed by CSP
  // connect-src 'self') is preferred; polling takes over where EventSource is missing or the stream
  // is refused (an unknown job, a rate limit, an outage, an API key EventSource cannot send).

  function pollStatus(jobId, sink) {
    const path = `${API}/status/${encodeURIComponent(jobId)}?include=files`;
    let timer = null;
    let stopped = false;
    let backoff = 1;

    function nextDelay(result) {
      if (result.status === 200) {
        backoff = 1;
        sink.update(result.body);
        return TERMINAL.has(result.body.status) ? null : result.retryAfter ?? DEFAULT_POLL_SECONDS;
      }
      if (result.status === 404) {
        sink.gone(`There is no job ${jobId}: the link is wrong, or the job is old enough to have been forgotten.`);
        return null;
      }
      if (result.status === 400) {
        sink.gone(`"${jobId}" is not a job id.`);
        return null;
      }
      const wait = result.retryAfter ?? backoff;
      backoff = Math.min(backoff * 2, 30);
      sink.problem(`${problemText(result, "checking the job")} Trying again in ${seconds(wait)}.`, result.status);
      return wait;
    }

    async function tick() {
      const result = await api("GET", path);
      if (stopped) return;
      const delay = nextDelay(result);
      if (delay !== null) timer = setTimeout(tick, Math.max(delay, 1) * 1000);
    }

    tick();
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  // One bounded response after another: the server ends each within 20 s and EventSource reconnects
  // after its retry: hint with Last-Event-ID. A terminal event is the last; the client closes on it.
  function streamStatus(jobId, sink, fallBack) {
    const events = new EventSource(`${API}/stream/${encodeURIComponent(jobId)}?include=files`);
    function onDocument(event) {
      const doc = JSON.parse(event.data);
      sink.update(doc);
      if (TERMINAL.has(doc.status)) events.close();
    }
    for (const name of ["connected", "progress", ...TERMINAL]) events.addEventListener(name, onDocument);
    // A response that ends is a reconnect (readyState CONNECTING); a refused one closes the source.
    events.addEventListener("error", () => {
      if (events.readyState === EventSource.CLOSED) fallBack();
    });
    return { stop: () => events.close() };
  }

  function openStatusSource(jobId, sink) {
    const view = $("job-view");
    let current = null;
    function poll() {
      view.dataset.source = "poll";
      current = pollStatus(jobId, sink);
    }
    if (typeof EventSource === "function" && !sessionStorage.getItem(KEY_STORAGE)) {
      view.dataset.source = "stream";
      current = streamStatus(jobId, sink, poll);
    } else {
      poll();
    }
    return { stop: () => current.stop() };
  }

  // -- view -------------------------------------------------------------------------------------

  function notify(kind, text) {
    const notice = $("notice");
    notice.hidden = !text;
    notice.dataset.kind = kind;
    notice.textContent = text || "";
  }

  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined) return "";
    const units = ["bytes", "KB", "MB", "GB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
  }

  function renderFiles(files, finished) {
    const list = $("files");
    const tiles = new Map([...list.children].map((tile) => [tile.dataset.fileId, tile]));
    for (const file of files) {
      let tile = tiles.get(String(file.fileId));
      if (!tile) {
        tile = document.createElement("li");
        tile.className = "file";
        tile.dataset.fileId = String(file.fileId);
        tile.append(Object.assign(document.createElement("span"), { className: "id", textContent: file.fileId }));
        tile.append(Object.assign(document.createElement("span"), { className: "state" }));
        list.append(tile);
      }
      tile.dataset.status = file.status;
      const size = file.status === "available" && file.size !== null ? ` · ${formatBytes(file.size)}` : "";
      const label = finished && file.status === "pending" ? "not prepared" : file.status;
      tile.querySelector(".state").textContent = label + size;
    }
  }

  // A job split into volumes (BUNDLE_MAX_BYTES) lists each zip with its size and SHA-256, so a
  // user can check what they saved (sha256sum) against what the service hashed while it wrote it,
  // or let the page check it (verifyVolumes). A later document listing the same zips leaves the
  // list, and so each zip's check, as it is.
  let listedVolumes = "";

  function renderVolumes(jobId, volumes) {
    const list = $("volumes");
    list.hidden = volumes.length === 0;
    $("volume-actions").hidden = volumes.length === 0;
    const listing = `${jobId} ${volumes.map((bundle) => bundle.sha256).join(" ")}`;
    if (listing === listedVolumes) return;
    listedVolumes = listing;
    list.replaceChildren(
      ...volumes.map((bundle, index) => {
        const item = document.createElement("li");
        item.dataset.volume = String(index + 1);
        const link = document.createElement("a");
        link.href = `${API}/${encodeURIComponent(jobId)}?volume=${index + 1}`;
        const files = bundle.fileIds.length === 1 ? "1 file" : `${bundle.fileIds.length} files`;
        link.textContent = `Zip ${index + 1} of ${volumes.length} (${formatBytes(bundle.size)}, ${files})`;
        const digest = document.createElement("code");
        digest.textContent = `sha256 ${bundle.sha256}`;
        const button = Object.assign(document.createElement("button"), { type: "button", textContent: "Verify" });
        button.addEventListener("click", () => verifyVolumes([index + 1]));
        const check = Object.assign(document.createElement("span"), { className: "check" });
        check.setAttribute("role", "status");
        item.append(link, " ", digest, button, check);
        return item;
      }),
    );
  }

  // -- verifying zips in the browser ---------------------------------------------------------------

  let verifying = false;

  function showCheck(volume, state, text) {
    const check = $("volumes").querySelector(`li[data-volume="${volume}"] .check`);
    if (!check) return;
    check.dataset.state = state;
    check.textContent = text;
  }

  function checkResult(result) {
    if (result.error) return ["error", `Could not verify: ${result.error}.`];
    if (result.ok) return ["verified", "Verified: the SHA-256 matches."];
    return ["mismatch", `Does not match: got ${formatBytes(result.bytes)} with sha256 ${result.sha256}.`];
  }

  // One zip after another, each from a URL in a status document read just now (the listed ones
  // may have expired: PRESIGN_EXPIRY_SECONDS), against that document's size and digest.
  async function verifyVolumes(volumes) {
    if (verifying) return;
    verifying = true;
    const jobId = currentJob;
    const buttons = [$("verify-all"), ...$("volumes").querySelectorAll("button")];
    buttons.forEach((button) => (button.disabled = true));
    try {
      volumes.forEach((volume) => showCheck(volume, "waiting", "Waiting…"));
      const result = await api("GET", `${API}/status/${encodeURIComponent(jobId)}`);
      const bundles = result.status === 200 && result.body && Array.isArray(result.body.bundles) ? result.body.bundles : null;
      for (const volume of volumes) {
        if (jobId !== currentJob) return;
        const bundle = bundles && bundles[volume - 1];
        if (!bundle || !bundle.downloadUrl) {
          showCheck(volume, "error", `Could not verify: ${problemText(result, "reading the zip's address")}`);
          continue;
        }
        let shown = -1;
        showCheck(volume, "checking", "Checking… 0%");
        const outcome = await window.delineateVerify.verify(bundle.downloadUrl, bundle, (bytes) => {
          const percent = bundle.size ? Math.floor((100 * bytes) / bundle.size) : 0;
          if (percent === shown) return;
          shown = percent;
          showCheck(volume, "checking", `Checking… ${percent}% (${formatBytes(bytes)} of ${formatBytes(bundle.size)})`);
        });
        if (jobId === currentJob) showCheck(volume, ...checkResult(outcome));
      }
    } finally {
      verifying = false;
      buttons.forEach((button) => (button.disabled = false));
    }
  }

  function terminalNotice(doc) {
    if (doc.status === "completed" && doc.downloadUrl) {
      const count = Array.isArray(doc.bundles) ? doc.bundles.length : 1;
      if (count > 1) return ["ok", `Done: ${doc.availableFiles} of ${doc.totalFiles} files, in ${count} zips.`];
      return ["ok", `Done: ${doc.availableFiles} of ${doc.totalFiles} files are in the zip (${formatBytes(doc.size)}).`];
    }
    if (doc.status === "completed") {
      return ["warn", "Finished, but none of the files were available, so there is nothing to download."];
    }
    if (doc.status === "failed") return ["error", `The job failed: ${doc.error || "no reason was given"}.`];
    return ["warn", "This job was cancelled. Start a new download to try again."];
  }

  function render(doc) {
    const view = $("job-view");
    view.dataset.status = doc.status;
    $("job-id").textContent = doc.jobId;
    $("job-status").textContent = doc.status;
    $("job-status").dataset.status = doc.status;
    $("progress").value = doc.progress;
    $("progress-text").textContent =
      `${doc.completedFiles} of ${doc.totalFiles} files processed (${doc.progress}%), ${doc.availableFiles} available`;
    const done = TERMINAL.has(doc.status);
    if (Array.isArray(doc.files)) renderFiles(doc.files, done);
    $("cancel-button").hidden = done;
    const volumes = Array.isArray(doc.bundles) && doc.bundles.length > 1 ? doc.bundles : [];
    const link = $("download-link");
    link.hidden = !(doc.status === "completed" && doc.downloadUrl) || volumes.length > 0;
    link.href = `${API}/${encodeURIComponent(doc.jobId)}`;
    link.textContent = doc.size ? `Download zip (${formatBytes(doc.size)})` : "Download zip";
    renderVolumes(doc.jobId, volumes);
    if (done) notify(...terminalNotice(doc));
    document.title = `${doc.status} · ${doc.progress}% · Delineate`;
  }

  // -- controller -------------------------------------------------------------------------------

  let source = null;
  let currentJob = null;
  let idempotency = { ids: "", key: "" };

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // One Idempotency-Key per list of ids, so retrying after a 503 or a lost answer cannot start it twice.
  function idempotencyKeyFor(ids) {
    const joined = ids.join(",");
    if (idempotency.ids !== joined) idempotency = { ids: joined, key: newKey() };
    return idempotency.key;
  }

  function parseFileIds(text) {
    const tokens = text.split(/[\s,;]+/).filter(Boolean);
    if (tokens.length === 0) return { error: "Enter at least one file id." };
    const ids = [];
    for (const token of tokens) {
      const id = /^\d+$/.test(token) ? Number(token) : NaN;
      if (!(id >= FILE_ID_MIN && id <= FILE_ID_MAX)) {
        return { error: `"${token}" is not a file id: use whole numbers from ${FILE_ID_MIN} to ${FILE_ID_MAX}.` };
      }
      if (!ids.includes(id)) ids.push(id);
    }
    if (ids.length > MAX_FILES) return { error: `At most ${MAX_FILES} different files per download (got ${ids.length}).` };
    return { ids };
  }

  function watch(jobId) {
    if (source) source.stop();
    currentJob = jobId;
    $("start-view").hidden = true;
    $("job-view").hidden = false;
    $("job-id").textContent = jobId;
    source = openStatusSource(jobId, {
      update(doc) {
        if (!TERMINAL.has(doc.status)) notify("info", "");
        render(doc);
      },
      problem(text, status) {
        notify(status === 429 ? "warn" : "error", text);
      },
      gone(text) {
        $("job-view").hidden = true;
        $("start-view").hidden = false;
        notify("error", text);
      },
    });
  }

  function showForm() {
    if (source) source.stop();
    source = null;
    currentJob = null;
    $("job-view").hidden = true;
    $("start-view").hidden = false;
    $("files").replaceChildren();
    notify("info", "");
  }

  function route() {
    const jobId = new URLSearchParams(location.search).get("job");
    if (jobId === null || jobId === "") {
      showForm();
    } else if (!JOB_ID.test(jobId)) {
      showForm();
      notify("error", `"${jobId}" is not a job id; a job id looks like 3f0c2b1e-7a52-4c57-9d2e-3f1d0e1b2c3d.`);
    } else {
      watch(jobId.toLowerCase());
    }
  }

  async function start(event) {
    event.preventDefault();
    const parsed = parseFileIds($("file-ids").value);
    if (parsed.error) {
      notify("error", parsed.error);
      return;
    }
    const button = $("start-button");
    button.disabled = true;
    notify("info", "Starting…");
    const result = await api("POST", `${API}/initiate`, { file_ids: parsed.ids }, { "Idempotency-Key": idempotencyKeyFor(parsed.ids) });
    button.disabled = false;
    if ((result.status === 202 || result.status === 200) && result.body && result.body.jobId) {
      idempotency = { ids: "", key: "" };
      history.pushState(null, "", `/app?job=${encodeURIComponent(result.body.jobId)}`);
      notify("info", "");
      watch(result.body.jobId);
      return;
    }
    const retrySafe = result.status === 0 || result.status >= 500 ? " Pressing Start again is safe: it cannot start the download twice." : "";
    notify(result.status === 429 ? "warn" : "error", problemText(result, "starting the download") + retrySafe);
  }

  async function cancel() {
    const jobId = currentJob;
    const button = $("cancel-button");
    button.disabled = true;
    const result = await api("DELETE", `${API}/${encodeURIComponent(jobId)}`);
    button.disabled = false;
    if (jobId !== currentJob) return;
    if (result.status === 200 || result.status === 409) {
      watch(jobId); // one more status read brings the per-file grid up to date, then the source stops
      return;
    }
    notify(result.status === 429 ? "warn" : "error", problemText(result, "cancelling the job"));
  }

  function rememberKey() {
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  $("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("change", rememberKey);
  $("start-form").addEventListener("submit", start);
  $("cancel-button").addEventListener("click", cancel);
  $("verify-all").addEventListener("click", () => {
    verifyVolumes([...$("volumes").querySelectorAll("li[data-volume]")].map((item) => Number(item.dataset.volume)));
  });
  window.addEventListener("popstate", route);
  route();
})();
