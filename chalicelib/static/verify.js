"use strict";
// Verifies a zip in the browser: streams it from its presigned S3 URL and hashes it chunk by chunk
// with the vendored @noble/hashes SHA-256 (vendor/noble-hashes-sha256.js). WebCrypto's digest()
// takes one whole buffer, and a volume may be 4 GiB, so memory here stays one chunk whatever the size.
// The bucket answers CORS for GET (infra/template.yaml) and the page's CSP connect-src names its origin.
window.delineateVerify = (() => {
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  // Resolves to {ok, bytes, sha256} once the whole zip is read, or {error} when it cannot be;
  // `expected` is a status document's bundle ({size, sha256}); onProgress(bytesRead) after each chunk.
  async function verify(url, expected, onProgress) {
    let response;
    try {
      // no-store: a second check must read S3 again, not the cache. No cookies, and no Referer,
      // which would hand S3's logs the page's address with its job id.
      response = await fetch(url, { cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer", redirect: "error" });
    } catch {
      return { error: "the zip could not be fetched (offline, blocked, or the link expired)" };
    }
    if (!response.ok || !response.body) return { error: `the zip could not be fetched: HTTP ${response.status}` };
    const hash = nobleHashes.sha256.create();
    const reader = response.body.getReader();
    let bytes = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
        bytes += value.length;
        onProgress(bytes);
      }
    } catch {
      return { error: `the download stopped after ${bytes} bytes` };
    }
    const sha256 = hex(hash.digest());
    return { ok: sha256 === expected.sha256 && bytes === expected.size, bytes, sha256 };
  }

  return { verify };
})();
