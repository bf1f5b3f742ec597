#!/usr/bin/env bash
# Starts the embedded default: a Celery worker on the folder broker (no server needed) in the
# background and gunicorn in the foreground; stopping gunicorn (Ctrl-C) stops the worker too.
# The worker embeds beat (-B): it runs the janitors that re-queue validations and evaluations
# lost to a crash and remove leftovers, every MEDIGAN_JANITOR_INTERVAL_SECONDS, and once at
# start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var/log

"$VENV/bin/celery" -A hub worker --queues validation,default,gpu --concurrency 1 \
  --beat --schedule var/celerybeat-schedule \
  --loglevel INFO --logfile var/log/worker.log --pidfile var/worker.pid &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM

cat <<TXT

medigan hub is starting on http://$HOST:$PORT/  (worker log: var/log/worker.log)
Demo accounts (admin, reviewer, contributor token): var/demo-credentials.json

Try next, in another shell:
  $VENV/bin/medigan-client --hub http://$HOST:$PORT sync
  $VENV/bin/medigan-client search mammography dcgan --operator AND --medigan-semantics
  $VENV/bin/medigan-client search mammo dcgan
  $VENV/bin/medigan-client generate zoo/chestxray-dcgan-64 -n 64 -o synthetic-cxr
  open http://$HOST:$PORT/admin/ to review releases, http://$HOST:$PORT/api/docs/ for the API

TXT
"$VENV/bin/gunicorn" --config deploy/gunicorn.conf.py --bind "$HOST:$PORT" hub.wsgi:application
