"""`python -m chalicelib.admin keys ...` against moto: what it prints, what it stores, how it exits."""

from __future__ import annotations

import json
import re

import boto3
import pytest

from chalicelib import admin
from chalicelib.keys.store import KeyStore, hash_key

KEY_LINE = re.compile(r"^DELINEATE_API_KEY=(dlk_[0-9a-f]{16}_[A-Za-z0-9_-]{43})$")
ID_LINE = re.compile(r"^DELINEATE_API_KEY_ID=([0-9a-f]{16})$")


@pytest.fixture
def store(stack) -> KeyStore:
    return KeyStore(boto3.resource("dynamodb").Table(stack["JobsTableName"]))


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = admin.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def create(capsys, *options: str) -> tuple[str, str]:
    code, lines, _ = run(capsys, "keys", "create", *options)
    assert code == 0
    key, key_id = KEY_LINE.match(lines[0]).group(1), ID_LINE.match(lines[1]).group(1)
    return key, key_id


def test_create_prints_exactly_the_key_and_its_id(store, capsys):
    code, lines, err = run(capsys, "keys", "create", "--name", "ci", "--rate-limit", "20", "--max-active-jobs", "2")

    assert code == 0 and len(lines) == 2
    key = KEY_LINE.match(lines[0]).group(1)
    key_id = ID_LINE.match(lines[1]).group(1)
    stored = store.get(key_id)
    assert stored.key_hash == hash_key(key)
    assert (stored.record.name, stored.record.rate_limit, stored.record.max_active_jobs) == ("ci", 20, 2)
    assert "shown only this once" in err and key not in err


def test_list_shows_every_key_without_the_key(store, capsys):
    first_key, first_id = create(capsys, "--name", "alice")
    second_key, second_id = create(capsys, "--name", "bob", "--rate-limit", "5")

    code, lines, err = run(capsys, "keys", "list")

    assert code == 0
    assert lines[0].split() == ["ID", "NAME", "CREATED", "REVOKED", "RATE_LIMIT", "MAX_ACTIVE_JOBS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[first_id][1:2] + rows[first_id][3:] == ["alice", "-", "-", "-"]
    assert rows[second_id][1:2] + rows[second_id][3:] == ["bob", "-", "5", "-"]
    output = "\n".join(lines) + err
    assert first_key not in output and second_key not in output and hash_key(first_key) not in output
    assert "2 key(s)" in err


def test_list_as_json_lines(store, capsys):
    _, key_id = create(capsys, "--name", "ci", "--max-active-jobs", "4")

    code, lines, _ = run(capsys, "keys", "list", "--json")

    assert code == 0
    (document,) = [json.loads(line) for line in lines]
    assert document["id"] == key_id and document["maxActiveJobs"] == 4 and document["revokedAt"] is None
    assert set(document) == {"id", "name", "createdAt", "revokedAt", "rateLimit", "maxActiveJobs"}


def test_revoke_marks_the_key_and_a_second_revoke_is_harmless(store, capsys):
    _, key_id = create(capsys, "--name", "ci")

    first = run(capsys, "keys", "revoke", key_id)
    second = run(capsys, "keys", "revoke", key_id)
    _, lines, _ = run(capsys, "keys", "list", "--json")

    assert first[0] == 0 and "revoked" in first[1][0]
    assert second[0] == 0 and "already revoked" in second[1][0]
    assert json.loads(lines[0])["revokedAt"] is not None


def test_revoking_an_unknown_key_fails_with_1(store, capsys):
    code, lines, err = run(capsys, "keys", "revoke", "0123456789abcdef")

    assert (code, lines) == (1, [])
    assert "no key 0123456789abcdef" in err


def test_a_stack_name_finds_the_table_from_its_outputs(store, capsys, monkeypatch):
    monkeypatch.delenv("JOBS_TABLE_NAME")

    _, key_id = create(capsys, "--name", "ci", "--stack", "delineate-test")

    assert store.get(key_id) is not None


def test_an_unknown_stack_fails_with_1(store, capsys):
    code, _, err = run(capsys, "keys", "list", "--stack", "no-such-stack")

    assert code == 1 and "stack no-such-stack" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["keys"],
        ["keys", "rotate"],
        ["keys", "create"],
        ["keys", "create", "--name", "ci", "--rate-limit", "0"],
        ["keys", "create", "--name", "ci", "--max-active-jobs", "many"],
        ["keys", "revoke"],
        ["keys", "revoke", "not-an-id"],
        ["keys", "list", "--dev", "--table", "t"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        admin.main(argv)

    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_a_name_the_store_refuses_exits_2(store, capsys):
    code, lines, err = run(capsys, "keys", "create", "--name", " ")

    assert (code, lines) == (2, [])
    assert "name must be" in err


# -- which table ------------------------------------------------------------------


def parse(*argv: str):
    return admin.build_parser().parse_args(["keys", "list", *argv])


def test_the_environment_names_the_table_when_it_defines_one(tmp_path):
    (tmp_path / "stack.env").write_text("JOBS_TABLE_NAME=dev-table\n")

    target = admin.resolve_target(parse(), {"JOBS_TABLE_NAME": "env-table", "DEV_STATE_DIR": str(tmp_path)})

    assert (target.table, dict(target.dev_env)) == ("env-table", {})


def test_otherwise_the_running_dev_stack_is_used(tmp_path):
    (tmp_path / "stack.env").write_text(
        "AWS_ENDPOINT_URL=http://127.0.0.1:5555\nAWS_DEFAULT_REGION=eu-west-1\nJOBS_TABLE_NAME=dev-table\n"
    )

    target = admin.resolve_target(parse(), {"DEV_STATE_DIR": str(tmp_path)})

    assert target.table == "dev-table"
    assert target.dev_env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"


def test_dev_flag_prefers_the_dev_stack_over_the_environment(tmp_path):
    (tmp_path / "stack.env").write_text("JOBS_TABLE_NAME=dev-table\n")
    environ = {"JOBS_TABLE_NAME": "env-table", "AWS_ENDPOINT_URL": "http://x", "DEV_STATE_DIR": str(tmp_path)}

    assert admin.resolve_target(parse("--dev"), environ).table == "dev-table"


def test_explicit_table_wins_over_everything(tmp_path):
    environ = {"JOBS_TABLE_NAME": "env-table", "DEV_STATE_DIR": str(tmp_path)}

    assert admin.resolve_target(parse("--table", "cloud-table"), environ).table == "cloud-table"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no running dev stack"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "JOBS_TABLE_NAME is not"),
    ],
)
def test_nothing_to_act_on_exits_2(tmp_path, capsys, environ, message):
    code = admin.main(["keys", "list"], environ={"DEV_STATE_DIR": str(tmp_path), **environ})

    assert code == 2 and message in capsys.readouterr().err
