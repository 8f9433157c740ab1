"""`delineate`: a thin command line over the library.

Exit codes: 0 success; 1 the job failed, was cancelled, had no available file, or the service refused
the operation; 2 usage error (bad arguments, invalid request, bad API key, a token naming
another service than --url / DELINEATE_URL); 3 the service was unreachable
or unavailable after retries; 130 interrupted (the job keeps running; the resume command is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from . import _common as common
from ._sync import Client, DownloadJob
from .errors import (
    ApiError,
    DelineateError,
    Forbidden,
    IntegrityError,
    InvalidToken,
    JobError,
    JobNotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)

OK, FAILED, USAGE, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 130


class Output:
    """Progress bars on a terminal; plain lines without control codes otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.terminal = self.stream.isatty()

    def _console(self) -> Any:  # rich.console.Console, imported only for a terminal
        from rich.console import Console

        return Console(file=self.stream)

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def error(self, text: str) -> None:
        print(f"delineate: {text}", file=sys.stderr, flush=True)

    def files_bar(self, job: DownloadJob) -> tuple[Callable[[DownloadJob], None], Callable[[], None]]:
        """(update, close) for a files-done / total display while the job runs."""
        if self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn("files"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self._console()
            )
            bar.start()
            task = bar.add_task("files", total=job.document.get("totalFiles") or None)

            def update(job: DownloadJob) -> None:
                bar.update(
                    task, completed=job.document.get("completedFiles") or 0, total=job.document.get("totalFiles")
                )

            return update, bar.stop
        last: list[tuple] = []

        def update_plain(job: DownloadJob) -> None:
            seen = (job.status, job.document.get("completedFiles"), job.document.get("totalFiles"))
            if seen[1] is not None and seen != (last[-1] if last else None):
                last.append(seen)
                self.line(f"files {seen[1]}/{seen[2]} {job.status}")

        return update_plain, lambda: None

    def bytes_bar(self, name: str) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
        if self.terminal:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            bar = Progress(
                TextColumn(name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=self._console()
            )
            bar.start()
            task = bar.add_task(name, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total), bar.stop
        self.line(f"downloading {name}")
        return lambda done, total: None, lambda: None

    def result(self, result: common.Downloaded) -> None:
        self.line(f"path: {result.path}")
        self.line(f"size: {result.size}")
        self.line(f"sha256: {result.sha256}")


def _parser() -> argparse.ArgumentParser:
    common_options = argparse.ArgumentParser(add_help=False)
    common_options.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"service URL (DELINEATE_URL, {common.DEFAULT_URL})"
    )
    common_options.add_argument("--api-key", default=argparse.SUPPRESS, help="API key (DELINEATE_API_KEY)")
    parser = argparse.ArgumentParser(
        prog="delineate", description="Download files through the Delineate service.", parents=[common_options]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    download = commands.add_parser("download", parents=[common_options], help="start a job, wait, download")
    download.add_argument("file_ids", nargs="+", type=int, metavar="FILE_ID")
    _destination(download)
    download.add_argument("--no-wait", action="store_true", help="print the job id and return at once")

    resume = commands.add_parser("resume", parents=[common_options], help="wait for a job and download it")
    resume.add_argument("job", metavar="JOB", help="job id or token")
    _destination(resume)

    status = commands.add_parser("status", parents=[common_options], help="show a job's status")
    status.add_argument("job", metavar="JOB")
    status.add_argument("--json", action="store_true", help="the status document as JSON")

    cancel = commands.add_parser("cancel", parents=[common_options], help="cancel a job")
    cancel.add_argument("job", metavar="JOB")

    jobs = commands.add_parser("jobs", parents=[common_options], help="list this API key's jobs")
    jobs.add_argument("--status", choices=sorted(common.TERMINAL | {"queued", "processing"}))
    jobs.add_argument("--limit", type=int, default=20)
    return parser


def _destination(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="bundle path (default delineate-<job>.zip); a job split into N zips: <name>-1-of-N.zip, ... beside it",
    )
    where.add_argument("--files", metavar="DIR", help="each file by itself into DIR instead of the bundle")


def _resume_command(args: argparse.Namespace, url: str, job_id: str) -> str:
    words = ["delineate", "resume", job_id]
    if url != common.DEFAULT_URL:
        words += ["--url", url]
    if getattr(args, "output", None):
        words += ["-o", args.output]
    if getattr(args, "files", None):
        words += ["--files", args.files]
    return shlex.join(words)


def _follow(client: Client, job: DownloadJob, args: argparse.Namespace, out: Output) -> int:
    """Waits with a files bar, then downloads with a byte bar and prints path, size and sha256."""
    try:
        update, close = out.files_bar(job)
        try:
            job.wait(on_progress=update)
        finally:
            close()
        if args.files:
            results = job.download_files(args.files)
            for result in results:
                out.result(result)
            return OK
        path = Path(args.output) if args.output else common.default_bundle_path(job.id)
        update_bytes, close = out.bytes_bar(str(path))
        try:
            results = job.download_bundles(path, on_progress=update_bytes)
        finally:
            close()
        for result in results:
            out.result(result)
        return OK
    except KeyboardInterrupt:
        out.error(f"interrupted; job {job.id} keeps running. Resume with:")
        print(f"  {_resume_command(args, client.base_url, job.id)}", file=sys.stderr, flush=True)
        return INTERRUPTED


def _run(args: argparse.Namespace, out: Output) -> int:
    with Client(_service_url(args), _api_key(args)) as client:
        command = COMMANDS.get(args.command)
        if command is None:
            return USAGE
        return command(client, args, out)


def _service_url(args: argparse.Namespace) -> str:
    """--url, else $DELINEATE_URL, else the default. Never a token's: a token naming another service is
    refused (exit 2) rather than followed, so the API key goes only where the user pointed it."""
    return getattr(args, "url", None) or os.environ.get("DELINEATE_URL") or common.DEFAULT_URL


def _api_key(args: argparse.Namespace) -> str | None:
    return getattr(args, "api_key", None) or os.environ.get("DELINEATE_API_KEY") or None


def _download(client: Client, args: argparse.Namespace, out: Output) -> int:
    try:
        job = client.begin_download(args.file_ids)
    except KeyboardInterrupt:
        out.error("interrupted before the service answered; no job to resume")
        return INTERRUPTED
    out.line(f"job {job.id} {job.status}, {job.document.get('totalFiles')} files")
    if args.no_wait:
        out.line(_resume_command(args, client.base_url, job.id))
        return OK
    return _follow(client, job, args, out)


def _resume(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _follow(client, client.resume(args.job), args, out)


def _status(client: Client, args: argparse.Namespace, out: Output) -> int:
    job = client.resume(args.job)
    if args.json:
        out.line(json.dumps(job.document, indent=2))
    else:
        _print_status(job.document, out)
    return OK


def _cancel(client: Client, args: argparse.Namespace, out: Output) -> int:
    job = client.resume(args.job)
    try:
        job.cancel()
    except ApiError as exc:
        if exc.status != 409:
            raise
        out.error(f"job {job.id}: {exc.message}")
        return FAILED
    out.line(f"job {job.id} {job.status}")
    return OK


def _print_status(document: dict, out: Output) -> None:
    out.line(f"job {document['jobId']} {document['status']} {document.get('progress', 0)}%")
    out.line(
        f"files {document.get('completedFiles')}/{document.get('totalFiles')}, {document.get('availableFiles')} available"
    )
    for key in ("size", "sha256", "downloadUrl", "error", "createdAt", "completedAt"):
        if document.get(key) is not None:
            out.line(f"{key}: {document[key]}")


def _jobs(client: Client, args: argparse.Namespace, out: Output) -> int:
    try:
        count = 0
        for job in client.jobs(status=args.status, limit=args.limit):
            out.line(
                f"{job.get('jobId')}  {job.get('status'):<10} {job.get('progress', 0):>3}%  {job.get('createdAt', '')}"
            )
            count += 1
            if count >= args.limit:
                break
    except Forbidden:
        out.error("this service runs without API keys, so it keeps no per-key job list")
        return USAGE
    except ApiError as exc:
        if exc.status in (400, 404, 405):
            out.error(f"this service does not list jobs ({exc.message})")
            return FAILED
        raise
    return OK


COMMANDS: dict[str, Callable[[Client, argparse.Namespace, Output], int]] = {
    "download": _download,
    "resume": _resume,
    "status": _status,
    "cancel": _cancel,
    "jobs": _jobs,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Output()
    try:
        return _run(args, out)
    except InvalidToken as exc:  # malformed, not a job id, or naming another service
        out.error(str(exc))
        return USAGE
    except (JobError, IntegrityError) as exc:
        out.error(str(exc))
        return FAILED
    except (ServiceUnavailable, RateLimited) as exc:
        out.error(f"{exc} (after retries)")
        return UNAVAILABLE
    except Unauthorized as exc:
        out.error(f"unauthorized: {exc.message} (set --api-key or DELINEATE_API_KEY)")
        return USAGE
    except JobNotFound as exc:
        out.error(f"no such job: {exc.message}")
        return FAILED
    except ApiError as exc:
        out.error(exc.message)
        return USAGE if exc.status in (400, 413, 422) else FAILED
    except DelineateError as exc:
        out.error(str(exc))
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
