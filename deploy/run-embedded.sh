#!/usr/bin/env bash
# Starts the embedded default: two Celery workers on the folder broker (no server needed) in the
# background and gunicorn in the foreground; stopping gunicorn (Ctrl-C) stops the workers too.
#
# Validation and evaluation have a worker each, so a contributor's push is checked at once even
# while an evaluation (minutes of generation and feature extraction) runs:
#   validation worker: queues `validation` (a push's checks) and `default` (the janitors), with
#                      beat embedded: it runs the janitors that re-queue validations and
#                      evaluations lost to a crash and remove leftovers, every
#                      MEDIGAN_JANITOR_INTERVAL_SECONDS, and once at start-up;
#   gpu worker:        queue `gpu` (evaluations).
# Each worker takes only its own queues' message files from var/broker (docs/operations.md says
# why two workers on different queues are safe on the folder broker; two on one queue are not).
# Logs go to var/log/ (under MEDIGAN_DATA_DIR when set, as the hub's own files do); the terminal
# shows where the hub is and what to try.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DATA=${MEDIGAN_DATA_DIR:-var}
LOG=$DATA/log
mkdir -p "$LOG"

workers=()
names=()
# Stopping asks the workers to finish their current task (TERM, a warm shutdown), but an
# evaluation can take minutes: after WORKER_STOP_GRACE_SECONDS they stop at once (QUIT, a cold
# shutdown that ends the pool and its sandboxes). A worker that is still there after as long
# again (a pool process stuck where no signal handler runs) is killed with everything it started,
# so Ctrl-C always ends the hub; with PYTHONFAULTHANDLER (below) its Python stacks go to its log
# first (ABRT). Work they held is not lost: the janitors put it back on the queue once it is past
# its deadline (docs/operations.md).
any_worker_alive() {
  local pid
  for pid in "${workers[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}
wait_workers() { # wait_workers SECONDS: until no worker is left or SECONDS have passed
  local waited=0
  while any_worker_alive && ((waited < $1 * 5)); do
    sleep 0.2
    waited=$((waited + 1))
  done
}
process_tree() { # process_tree PID: PID and every process below it, children first
  local pid=$1 child
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    process_tree "$child"
  done
  echo "$pid"
}
stop_workers() {
  trap - EXIT INT TERM
  ((${#workers[@]})) || return 0
  local grace=${WORKER_STOP_GRACE_SECONDS:-10} i tree
  kill -TERM "${workers[@]}" 2>/dev/null || true
  wait_workers "$grace"
  kill -QUIT "${workers[@]}" 2>/dev/null || true
  wait_workers "$grace"
  for i in "${!workers[@]}"; do
    kill -0 "${workers[$i]}" 2>/dev/null || continue
    tree=$(process_tree "${workers[$i]}")
    echo "the ${names[$i]} worker did not stop within $((2 * grace)) s of Ctrl-C; killing it" \
      "and the processes it started ($(echo $tree)); its stacks are in $LOG/worker-${names[$i]}.log" >&2
    # shellcheck disable=SC2086 # a list of pids
    kill -ABRT $tree 2>/dev/null || true
    sleep 1
    # shellcheck disable=SC2086
    kill -KILL $tree 2>/dev/null || true
  done
  wait "${workers[@]}" 2>/dev/null || true
}
trap stop_workers EXIT INT TERM

# worker NAME QUEUES [celery options...]: one worker in the background. Its log, its start-up
# banner and its warnings all go to var/log/worker-NAME.log, none to the terminal.
worker() {
  local name=$1 queues=$2
  shift 2
  "$VENV/bin/celery" -A hub worker --hostname "$name@%h" --queues "$queues" --concurrency 1 \
    --without-gossip --without-mingle --loglevel INFO --pidfile "$DATA/worker-$name.pid" "$@" \
    >>"$LOG/worker-$name.log" 2>&1 &
  workers+=("$!")
  names+=("$name")
}
# A worker that has to be killed at the end writes its Python stacks to its log first.
export PYTHONFAULTHANDLER=1
ulimit -c 0 # ... and leaves no core file behind
worker validation validation,default --beat --schedule "$DATA/celerybeat-schedule"
worker gpu gpu

cat <<TXT

medigan hub is starting on http://$HOST:$PORT/   (Ctrl-C stops it)
  logs: $LOG/web.log, $LOG/worker-validation.log, $LOG/worker-gpu.log, $LOG/setup.log
  demo accounts and API tokens (admin, reviewer, contributor): $DATA/demo-credentials.json
  the zoo models' evaluations run in the background; /leaderboard/ fills as each one finishes

Try next, in another shell (the README goes on from here):
  $VENV/bin/medigan-client sync --hub http://$HOST:$PORT   # later commands use this hub
  $VENV/bin/medigan-client search mammography dcgan --operator AND --medigan-semantics
  $VENV/bin/medigan-client search mammo dcgan
  $VENV/bin/medigan-client generate zoo/chestxray-dcgan-64 -n 64 -o synthetic-cxr
  $VENV/bin/medigan-client init-package my_model --model-id contributor/my-model
  open http://$HOST:$PORT/admin/ to review releases, http://$HOST:$PORT/api/docs/ for the API

TXT
status=0
"$VENV/bin/gunicorn" --config deploy/gunicorn.conf.py --bind "$HOST:$PORT" \
  --access-logfile "$LOG/web-access.log" --error-logfile "$LOG/web.log" \
  hub.wsgi:application || status=$?
if ((status != 0)); then
  echo "gunicorn stopped with status $status; the end of $LOG/web.log:" >&2
  tail -n 20 "$LOG/web.log" >&2 || true
fi
exit "$status"
