"""The benchmark's pictures (PNG under build/): latency CDFs, wall time against the ideal, the fairness timeline."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _cdf(axis, samples: list[float], label: str) -> None:
    ordered = sorted(samples)
    axis.plot(ordered, [(index + 1) / len(ordered) for index in range(len(ordered))], label=label)


def latency(results: dict, path: Path) -> None:
    figure, (status, initiate) = plt.subplots(1, 2, figsize=(11, 4))
    _cdf(status, results["floors"]["get_item"]["samples_ms"], "raw GetItem")
    _cdf(status, results["api"]["status"]["samples_ms"], "GET /v1/download/status/{id} (with a URL)")
    _cdf(status, results["api"]["status_without_url"]["samples_ms"], "GET /v1/download/status/{id} (no URL)")
    _cdf(initiate, results["floors"]["put_item_plus_send_message"]["samples_ms"], "raw PutItem + SendMessage")
    _cdf(initiate, results["api"]["initiate"]["samples_ms"], "POST /v1/download/initiate")
    for axis, title in ((status, "status vs its floor"), (initiate, "initiate vs its floor")):
        axis.set(title=title, xlabel="latency (ms)", ylabel="fraction of requests", xscale="log")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")
    figure.suptitle("Request path with the rate limiter on (interleaved samples, one run)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def wall_times(rows: list[dict], consumers: int, delay_s: float, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    files = [row["files"] for row in rows]
    axis.plot(files, [row["wall_s"] for row in rows], "o-", label="measured wall time")
    axis.plot(files, [row["ideal_s"] for row in rows], "s--", label=f"ideal: one delay, {delay_s:g} s")
    axis.plot(
        files, [row["sleeping_ideal_s"] for row in rows], "x:", label=f"sleeping workers' ideal ⌈N/{consumers}⌉ × delay"
    )
    for row in rows:
        axis.annotate(
            f"{row['over_ideal']:.2f}×",
            (row["files"], row["wall_s"]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="files in the job",
        ylabel="seconds",
        title=f"Job wall time, {consumers} consumers, {delay_s:g} s per file",
    )
    axis.grid(alpha=0.3, which="both")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def fairness(result: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    totals = {"big": result["big_job_files"], "small": result["small_job_files"]}
    for name, points in result["timeline"].items():
        if points:
            axis.step(
                [t for t, _ in points],
                [done / totals[name] for _, done in points],
                where="post",
                label=f"{name} job ({totals[name]} files)",
            )
    axis.set(
        xlabel="seconds since the big job was submitted",
        ylabel="fraction of files done",
        title=f"A small job submitted 1 s after a big one: done in {result['small_wall_s']:.1f} s "
        f"({result['small_wall_over_delay']:.1f} × one file's delay)",
    )
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
