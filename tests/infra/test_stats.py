"""`make stats` reads the dev stack's EMF lines and summarises the recent ones."""

from __future__ import annotations

import json
import time

from scripts import stats


def emf(timestamp_ms: float, **values: float) -> str:
    metrics = [{"Name": name, "Unit": "Seconds" if name.endswith("Seconds") else "Count"} for name in values]
    meta = {
        "Timestamp": int(timestamp_ms),
        "CloudWatchMetrics": [{"Namespace": "Delineate", "Dimensions": [["service"]], "Metrics": metrics}],
    }
    return json.dumps({"_aws": meta, "service": "delineate", **{k: [v] for k, v in values.items()}})


def test_recent_lines_are_summed_and_old_ones_left_out(tmp_path, capsys):
    now = time.time() * 1000
    (tmp_path / "consumer-1.log").write_text(
        "\n".join(
            [
                "INFO something else",
                emf(now - 1000, FilesPrepared=1, FileWaitSeconds=0.5),
                emf(now - 2000, FilesPrepared=1, FileWaitSeconds=1.5),
                emf(now - 3600_000, FilesPrepared=1),  # an hour ago
                '{"_aws": not json',
            ]
        )
    )
    (tmp_path / "api.log").write_text(emf(now - 500, ThrottledRequests=1) + "\n")

    assert stats.main(["--logs", str(tmp_path), "--minutes", "5"]) == 0

    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["FilesPrepared"][2:4] == ["2", "2.0"]
    assert rows["FileWaitSeconds"][1] == "Seconds" and rows["FileWaitSeconds"][-1] == "1.50"
    assert rows["ThrottledRequests"][2] == "1"


def test_no_recent_metrics_says_so(tmp_path, capsys):
    (tmp_path / "api.log").write_text("plain line\n")

    stats.main(["--logs", str(tmp_path)])

    assert "no metrics" in capsys.readouterr().out
