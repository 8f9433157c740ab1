"""Manage API keys: python -m chalicelib.admin keys create|list|revoke

  keys create --name NAME [--rate-limit N] [--max-active-jobs N]
        prints DELINEATE_API_KEY=<key> and DELINEATE_API_KEY_ID=<id>, the key's only showing
  keys list [--json]
        id, name, created, revoked, limits; never a key or its hash
  keys revoke ID
        refused within API_KEY_CACHE_SECONDS (at most 60 s) by every API instance

Which table, in this order:
  --table NAME     that table, with the caller's AWS credentials and region
  --stack NAME     the JobsTableName output of that CloudFormation stack (e.g. delineate-prod)
  --dev            the running dev stack, from $DEV_STATE_DIR/stack.env (default .dev/stack.env)
  none of these    JOBS_TABLE_NAME (and AWS_ENDPOINT_URL) from the environment when either
                   is set, else the dev stack when its stack.env exists

Exit codes: 0 done; 1 the operation failed (AWS error, no such key, stack not found);
2 bad usage, or no table to act on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.keys.store import ApiKey, InvalidKeyRequest, KeyStore, RevokeOutcome, is_key_id
from chalicelib.local.stackenv import read_stack_env, stack_env_path

OK, FAILED, USAGE = 0, 1, 2
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 3})
_COLUMNS = ("ID", "NAME", "CREATED", "REVOKED", "RATE_LIMIT", "MAX_ACTIVE_JOBS")


class UsageError(Exception):
    """Nothing to act on, or arguments the store refuses: exit 2."""


class OperationFailed(Exception):
    """The command was understood but could not be done: exit 1."""


@dataclass(frozen=True)
class Target:
    """Where the keys live: a table name, or a stack whose output names it."""

    description: str
    table: str | None = None
    stack: str | None = None
    dev_env: Mapping[str, str] = field(default_factory=dict)  # endpoint and credentials of the dev stack


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> Target:
    if args.table:
        return Target(f"table {args.table}", table=args.table)
    if args.stack:
        return Target(f"stack {args.stack}", stack=args.stack)
    configured = "JOBS_TABLE_NAME" in environ or "AWS_ENDPOINT_URL" in environ
    if configured and not args.dev:
        if "JOBS_TABLE_NAME" not in environ:
            raise UsageError("AWS_ENDPOINT_URL is set but JOBS_TABLE_NAME is not; set it, or pass --table or --dev")
        return Target(f"table {environ['JOBS_TABLE_NAME']}", table=environ["JOBS_TABLE_NAME"])
    path = stack_env_path(environ)
    dev_env = read_stack_env(path)
    if "JOBS_TABLE_NAME" not in dev_env:
        raise UsageError(
            f"no running dev stack ({path} missing): start one with `make dev`, or pass --table or --stack"
        )
    return Target(f"the dev stack ({path})", table=dev_env["JOBS_TABLE_NAME"], dev_env=dev_env)


def _session(target: Target, region: str | None) -> boto3.session.Session:
    dev = target.dev_env
    if not dev:
        return boto3.session.Session(region_name=region)
    return boto3.session.Session(
        aws_access_key_id=dev.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=dev.get("AWS_SECRET_ACCESS_KEY"),
        region_name=dev.get("AWS_DEFAULT_REGION", region),
    )


def _stack_table(session: boto3.session.Session, stack: str) -> str:
    cloudformation = session.client("cloudformation", config=_CLIENT_CONFIG)
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise OperationFailed(f"stack {stack}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    if "JobsTableName" not in outputs:
        raise OperationFailed(f"stack {stack} has no JobsTableName output: is it a Delineate stack?")
    return outputs["JobsTableName"]


def open_store(target: Target, region: str | None) -> KeyStore:
    session = _session(target, region)
    table = target.table or _stack_table(session, str(target.stack))
    # The dev stack's emulator; otherwise boto3 honours AWS_ENDPOINT_URL from the environment itself.
    endpoint = target.dev_env.get("AWS_ENDPOINT_URL") or None
    dynamodb = session.resource("dynamodb", endpoint_url=endpoint, config=_CLIENT_CONFIG)
    return KeyStore(dynamodb.Table(table))


# -- commands -------------------------------------------------------------------


def create(store: KeyStore, args: argparse.Namespace, target: Target) -> int:
    try:
        issued = store.create(args.name, rate_limit=args.rate_limit, max_active_jobs=args.max_active_jobs)
    except InvalidKeyRequest as exc:
        raise UsageError(str(exc)) from exc
    print(f"DELINEATE_API_KEY={issued.key}")
    print(f"DELINEATE_API_KEY_ID={issued.record.key_id}")
    print(f"created key {issued.record.key_id} ({issued.record.name}) on {target.description};", file=sys.stderr)
    print("the key is shown only this once: store it now", file=sys.stderr)
    return OK


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_table(keys: Sequence[ApiKey]) -> None:
    rows = [_COLUMNS] + [
        tuple(
            _cell(key.to_document()[name])
            for name in ("id", "name", "createdAt", "revokedAt", "rateLimit", "maxActiveJobs")
        )
        for key in keys
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def list_keys(store: KeyStore, args: argparse.Namespace, target: Target) -> int:
    keys = sorted(store.list(), key=lambda key: (key.created_at, key.key_id))
    if args.json:
        for key in keys:
            print(json.dumps(key.to_document()))
    else:
        _print_table(keys)
    print(f"{len(keys)} key(s) on {target.description}", file=sys.stderr)
    return OK


def revoke(store: KeyStore, args: argparse.Namespace, target: Target) -> int:
    outcome = store.revoke(args.id)
    if outcome is RevokeOutcome.NOT_FOUND:
        raise OperationFailed(f"no key {args.id} on {target.description}")
    print(f"key {args.id} {outcome.value}; the API refuses it within 60 s")
    return OK


# -- command line ---------------------------------------------------------------


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _key_id(raw: str) -> str:
    if not is_key_id(raw):
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a key id (16 hex characters, as DELINEATE_API_KEY_ID printed)"
        )
    return raw


def _target_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_mutually_exclusive_group()
    where.add_argument("--table", help="the jobs table, with your AWS credentials")
    where.add_argument("--stack", help="CloudFormation stack whose JobsTableName output names the table")
    where.add_argument("--dev", action="store_true", help="the running dev stack ($DEV_STATE_DIR/stack.env)")
    parent.add_argument("--region", help="AWS region for --table/--stack (default: your AWS configuration)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.admin",
        description="Delineate administration.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nouns = parser.add_subparsers(dest="noun", required=True, metavar="keys")
    keys = nouns.add_parser("keys", help="API keys").add_subparsers(dest="verb", required=True)
    target = _target_options()
    make = keys.add_parser("create", parents=[target], help="create a key and print it once")
    make.add_argument("--name", required=True, help="who or what holds the key")
    make.add_argument("--rate-limit", type=_positive, help="requests per rate-limit window (default: the service's)")
    make.add_argument("--max-active-jobs", type=_positive, help="unfinished jobs at once (default: unlimited)")
    make.set_defaults(command=create)
    listing = keys.add_parser("list", parents=[target], help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    listing.set_defaults(command=list_keys)
    drop = keys.add_parser("revoke", parents=[target], help="revoke a key by id")
    drop.add_argument("id", type=_key_id, help="the key id (DELINEATE_API_KEY_ID)")
    drop.set_defaults(command=revoke)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits 2 on bad usage
    command: Callable[[KeyStore, argparse.Namespace, Target], int] = args.command
    try:
        target = resolve_target(args, os.environ if environ is None else environ)
        return command(open_store(target, args.region), args, target)
    except UsageError as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return USAGE
    except OperationFailed as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return FAILED
    except (BotoCoreError, ClientError) as exc:
        print(f"admin: {args.verb} failed: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
