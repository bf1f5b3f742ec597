"""Settings of medigan hub, read from the environment; without it, the embedded default.

The embedded default needs no service: SQLite under ``var/``, artifacts on the filesystem, and a
Celery broker that lives in a folder. Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL`` and
``MEDIGAN_STORAGE=s3`` (see deploy/env.example).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF

# Lets admin and queryset classes be subscripted at run time as they are for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("MEDIGAN_DATA_DIR", BASE_DIR / "var")).resolve()


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("DJANGO_DEBUG", False)
# The embedded default must start with one command, so it carries a development key; production
# refuses to start without its own (see deploy/env.example).
_DEV_SECRET_KEY = "medigan-hub-embedded-default-not-for-production"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", _DEV_SECRET_KEY)
if SECRET_KEY == _DEV_SECRET_KEY and _env_flag("MEDIGAN_PRODUCTION", False):
    raise RuntimeError("DJANGO_SECRET_KEY must be set when MEDIGAN_PRODUCTION is on")

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files of the hub: /api/docs/ works without a CDN.
    "drf_spectacular_sidecar",
    "hub.accounts",
    "hub.registry",
    "hub.evaluations",
    "hub.federation",
    "hub.github",
    "hub.pinning",
    "hub.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Anonymous catalogue syncs, the hub's hottest request, skip the rest of the chain.
    "hub.snapshot.AnonymousCatalogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hub.accounts.middleware.AdminLoginThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # A locked database answers 503 with Retry-After on pages too, not 500 (the API's views
    # have their own exception handler).
    "hub.api.middleware.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'hub.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web processes and workers share the file. WAL lets readers go on beside the one writer;
    # the busy timeout makes a writer wait for the lock rather than fail at once; and IMMEDIATE
    # takes the write lock when a transaction begins, so two transactions that read and then
    # write cannot deadlock on the upgrade (SQLite answers that "database is locked" at once,
    # whatever the timeout). A lock still held after the timeout answers 503 (hub/api/errors.py).
    # Connections persist like any database's (DATABASE_CONN_MAX_AGE): opening one and running
    # the PRAGMAs above cost more than the catalogue's revalidation itself.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": float(os.environ.get("MEDIGAN_SQLITE_BUSY_TIMEOUT_SECONDS", "20")),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIGAN_MEDIA_ROOT", DATA_DIR / "media")).resolve()

_STORAGE_KIND = os.environ.get("MEDIGAN_STORAGE", "filesystem")
_default_storage: dict[str, Any]
if _STORAGE_KIND == "s3":
    # django-storages with the settings of hub/settings/storage.py (the tests use the same).
    from hub.settings.storage import s3_storage

    _default_storage = s3_storage(os.environ)
elif _STORAGE_KIND == "filesystem":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
else:
    raise RuntimeError(f"MEDIGAN_STORAGE must be 'filesystem' or 's3', not {_STORAGE_KIND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Shared by every process of the hub (the failed sign-in counts of hub.accounts.throttling):
# Redis where CACHE_URL names it, else a table of the hub's database (made by a migration).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "hub_cache",
        }
    }
# Failed sign-ins (tokens, passwords) one address may make per window before it gets 429.
MEDIGAN_AUTH_FAILURE_LIMIT = int(os.environ.get("MEDIGAN_AUTH_FAILURE_LIMIT", "50"))
MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS = int(
    os.environ.get("MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS", "600")
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hub.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hub.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Every page the hub serves, the admin and the API docs included, runs only the hub's own scripts
# and style sheets: no inline script or style, nothing from another origin, so a card field that
# slipped past escaping still could not run. Sample grids are served by the hub; Swagger UI draws
# its icons from data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Contributors are mailed on each state change of their releases. The embedded default prints
# the mails in the worker's log; production names its backend (SMTP) and sender.
EMAIL_BACKEND = os.environ.get(
    "MEDIGAN_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("MEDIGAN_EMAIL_FROM", "medigan hub <hub@localhost>")
EMAIL_HOST = os.environ.get("MEDIGAN_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("MEDIGAN_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("MEDIGAN_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("MEDIGAN_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = _env_flag("MEDIGAN_EMAIL_TLS", False)

# The contributors' pages sign in at the web form; the admin keeps its own.
LOGIN_URL = "web-login"
LOGIN_REDIRECT_URL = "web-submissions"
LOGOUT_REDIRECT_URL = "catalog-page"

SPECTACULAR_SETTINGS = {
    "TITLE": "medigan hub API",
    "DESCRIPTION": "Catalogue, releases, artifacts and review of generative models for medical "
    "image synthesis.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from the hub's own static files (drf-spectacular-sidecar, collected by `make run`
    # and served by whitenoise): an offline or firewalled hub still shows its API docs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Uploads above this go to a temporary file instead of memory; the push limit is separate.
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
# A file part past the package limit is stopped while it arrives, not after it was spooled whole
# (the web submission form; the API's push parser has its own count).
FILE_UPLOAD_HANDLERS = [
    "hub.web.uploads.PackageSizeLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Text fields of a form are read whole before any view sees them: the card (1 MiB) and a little.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024 + 64 * 1024
MEDIGAN_MAX_PACKAGE_BYTES = int(os.environ.get("MEDIGAN_MAX_PACKAGE_BYTES", str(512 * 1024 * 1024)))

# Limits of the sandboxed smoke generation that validation runs on every submitted package.
MEDIGAN_SMOKE_SAMPLES = int(os.environ.get("MEDIGAN_SMOKE_SAMPLES", "4"))
MEDIGAN_SMOKE_TIMEOUT_SECONDS = float(os.environ.get("MEDIGAN_SMOKE_TIMEOUT_SECONDS", "180"))

# The sandbox that runs contributed code (validation's smoke generation, every evaluation's
# generation): bubblewrap, failing closed. `none` runs packages WITHOUT isolation and exists only
# for a trusted single-user hub; the admin and /api/v1/status then say so (docs/security.md).
MEDIGAN_SANDBOX = os.environ.get("MEDIGAN_SANDBOX", "bubblewrap").strip().lower()
if MEDIGAN_SANDBOX not in {"bubblewrap", "none"}:
    raise RuntimeError(f"MEDIGAN_SANDBOX must be 'bubblewrap' or 'none', not {MEDIGAN_SANDBOX!r}")
# Whole-run limits: memory (page cache and scratch included) and process count of the whole
# process tree, the scratch tmpfs (its only writable place), CPU seconds per process.
MEDIGAN_SANDBOX_MEMORY_BYTES = int(
    os.environ.get("MEDIGAN_SANDBOX_MEMORY_BYTES", str(6 * 1024 * 1024 * 1024))
)
MEDIGAN_SANDBOX_MAX_PROCESSES = int(os.environ.get("MEDIGAN_SANDBOX_MAX_PROCESSES", "64"))
MEDIGAN_SANDBOX_SCRATCH_BYTES = int(
    os.environ.get("MEDIGAN_SANDBOX_SCRATCH_BYTES", str(1024 * 1024 * 1024))
)
MEDIGAN_SANDBOX_CPU_SECONDS = int(os.environ.get("MEDIGAN_SANDBOX_CPU_SECONDS", "900"))
# A control group delegated to a worker that is not root, relative to the hierarchy's root.
MEDIGAN_SANDBOX_CGROUP = os.environ.get("MEDIGAN_SANDBOX_CGROUP", "")
# Where bubblewrap is, when it is not on PATH.
MEDIGAN_SANDBOX_BWRAP = os.environ.get("MEDIGAN_SANDBOX_BWRAP", "")
# A root worker runs each sandbox as its own uid from this base; no account may use the range.
MEDIGAN_SANDBOX_UID_BASE = int(os.environ.get("MEDIGAN_SANDBOX_UID_BASE", "1880000000"))
MEDIGAN_WORK_DIR = DATA_DIR / "work"

# Federation (docs/federation.md). The hub's name, as its key set and release attestations carry
# it; its Ed25519 signing keys, kept outside the database (hub/signing.py).
MEDIGAN_HUB_NAME = os.environ.get("MEDIGAN_HUB_NAME", "medigan-hub")
# Changes per page a mirror asks its upstreams for: one page is applied in one transaction.
MEDIGAN_MIRROR_PAGE = int(os.environ.get("MEDIGAN_MIRROR_PAGE", "200"))
# The hub's URL as its users reach it, for what is written without a request (bundles).
MEDIGAN_PUBLIC_URL = os.environ.get("MEDIGAN_PUBLIC_URL", "http://127.0.0.1:8000")
MEDIGAN_SIGNING_KEY_DIR = Path(
    os.environ.get("MEDIGAN_SIGNING_KEY_DIR", DATA_DIR / "keys")
).resolve()

# GitHub-linked submissions (docs/github.md). The API's base URL (GitHub Enterprise Server:
# https://HOST/api/v3) and the hub's token, which never leaves the hub: it reads release assets
# (private repositories included) and posts commit statuses (a fine-grained token with
# "Contents: read" and "Commit statuses: write" on the linked repositories). Webhook secrets are
# kept encrypted with a key derived from MEDIGAN_GITHUB_SECRET_KEY (DJANGO_SECRET_KEY unless set):
# changing it makes every link's secret unreadable, so maintainers link again.
MEDIGAN_GITHUB_API_URL = os.environ.get("MEDIGAN_GITHUB_API_URL", "https://api.github.com")
MEDIGAN_GITHUB_TOKEN = os.environ.get("MEDIGAN_GITHUB_TOKEN", "")
MEDIGAN_GITHUB_SECRET_KEY = os.environ.get("MEDIGAN_GITHUB_SECRET_KEY", "") or SECRET_KEY
MEDIGAN_GITHUB_TIMEOUT_SECONDS = int(os.environ.get("MEDIGAN_GITHUB_TIMEOUT_SECONDS", "30"))
# A rate-limited fetch or status is retried after GitHub's reset time (X-RateLimit-Reset), at
# least this long and at most the maximum, this many times.
MEDIGAN_GITHUB_RETRY_MIN_SECONDS = float(os.environ.get("MEDIGAN_GITHUB_RETRY_MIN_SECONDS", "30"))
MEDIGAN_GITHUB_RETRY_MAX_SECONDS = float(os.environ.get("MEDIGAN_GITHUB_RETRY_MAX_SECONDS", "3600"))
MEDIGAN_GITHUB_MAX_RETRIES = int(os.environ.get("MEDIGAN_GITHUB_MAX_RETRIES", "8"))

# DOI pinning with Zenodo (hub.pinning; docs/operations.md, "DOI pinning"). The instance's base
# URL (zenodo.org, https://sandbox.zenodo.org, an InvenioRDM instance with Zenodo's deposit API)
# and the hub's token there (scopes deposit:write and deposit:actions), needed only to deposit.
# MEDIGAN_ZENODO_MINT says when the hub deposits an approved release: never, on_request (the
# contributor's `push --mint-doi`) or always. A DOI a push or card names is checked against the
# package and pinned before publication unless MEDIGAN_ZENODO_PIN_PROVIDED=0.
MEDIGAN_ZENODO_URL = os.environ.get("MEDIGAN_ZENODO_URL", "https://zenodo.org").rstrip("/")
MEDIGAN_ZENODO_TOKEN = os.environ.get("MEDIGAN_ZENODO_TOKEN", "")
MEDIGAN_ZENODO_MINT = os.environ.get("MEDIGAN_ZENODO_MINT", "on_request").strip().lower()
if MEDIGAN_ZENODO_MINT not in {"never", "on_request", "always"}:
    raise RuntimeError(
        f"MEDIGAN_ZENODO_MINT must be never, on_request or always, not {MEDIGAN_ZENODO_MINT!r}"
    )
MEDIGAN_ZENODO_PIN_PROVIDED = _env_flag("MEDIGAN_ZENODO_PIN_PROVIDED", True)
# Each request: seconds to connect, and to wait for an answer (an upload's whole body is sent
# before the wait starts). Reads are retried at once this many times, backing off from the
# given seconds; a pin as a whole is tried MEDIGAN_ZENODO_PIN_ATTEMPTS times, waiting
# MEDIGAN_ZENODO_RETRY_SECONDS, then twice that, ... (at most an hour) in between.
MEDIGAN_ZENODO_CONNECT_TIMEOUT_SECONDS = float(
    os.environ.get("MEDIGAN_ZENODO_CONNECT_TIMEOUT_SECONDS", "10")
)
MEDIGAN_ZENODO_READ_TIMEOUT_SECONDS = float(
    os.environ.get("MEDIGAN_ZENODO_READ_TIMEOUT_SECONDS", "120")
)
MEDIGAN_ZENODO_HTTP_RETRIES = int(os.environ.get("MEDIGAN_ZENODO_HTTP_RETRIES", "3"))
MEDIGAN_ZENODO_HTTP_BACKOFF_SECONDS = float(
    os.environ.get("MEDIGAN_ZENODO_HTTP_BACKOFF_SECONDS", "1")
)
MEDIGAN_ZENODO_PIN_ATTEMPTS = int(os.environ.get("MEDIGAN_ZENODO_PIN_ATTEMPTS", "8"))
MEDIGAN_ZENODO_RETRY_SECONDS = float(os.environ.get("MEDIGAN_ZENODO_RETRY_SECONDS", "60"))
# A pending pin whose task has not started this long after it was due (queued, or its retry
# due) lost its message: the janitor queues it again.
MEDIGAN_ZENODO_PIN_LOST_SECONDS = float(os.environ.get("MEDIGAN_ZENODO_PIN_LOST_SECONDS", "900"))
# Pinned records are fetched again when their last check is older than this (daily); beat
# looks for them every MEDIGAN_ZENODO_RECHECK_POLL_SECONDS. With MEDIGAN_ZENODO_RECHECK_DOWNLOAD
# the files are downloaded and their sha256 compared too, not only Zenodo's md5 and size.
MEDIGAN_ZENODO_RECHECK_SECONDS = float(os.environ.get("MEDIGAN_ZENODO_RECHECK_SECONDS", "86400"))
MEDIGAN_ZENODO_RECHECK_DOWNLOAD = _env_flag("MEDIGAN_ZENODO_RECHECK_DOWNLOAD", False)

# Contributed packages run with an environment built from their card's requirements, outside the
# sandbox, once per requirement set (docs/runtimes.md, "Package environments"). pip's index:
# unset means pip's own configuration; MEDIGAN_PIP_NO_INDEX=1 with MEDIGAN_PIP_FIND_LINKS (a
# folder of wheels, os.pathsep-separated) for an offline hub.
MEDIGAN_PIP_INDEX_URL = os.environ.get("MEDIGAN_PIP_INDEX_URL", "")
MEDIGAN_PIP_EXTRA_INDEX_URLS = tuple(os.environ.get("MEDIGAN_PIP_EXTRA_INDEX_URLS", "").split())
MEDIGAN_PIP_FIND_LINKS = tuple(
    p for p in os.environ.get("MEDIGAN_PIP_FIND_LINKS", "").split(os.pathsep) if p
)
MEDIGAN_PIP_NO_INDEX = os.environ.get("MEDIGAN_PIP_NO_INDEX", "0").strip().lower() in {
    "1",
    "true",
    "yes",
}
MEDIGAN_PIP_ENVIRONMENTS_DIR = Path(
    os.environ.get("MEDIGAN_PIP_ENVIRONMENTS_DIR", DATA_DIR / "environments")
)

# Evaluations of published releases (queue `gpu`). The project's own extractor always runs; the
# Inception extractors run when their weights files are configured (they cannot be downloaded
# by the hub).
MEDIGAN_EVALUATION_SAMPLES = int(os.environ.get("MEDIGAN_EVALUATION_SAMPLES", "1000"))
MEDIGAN_EVALUATION_BATCH_SIZE = int(os.environ.get("MEDIGAN_EVALUATION_BATCH_SIZE", "250"))
MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS = float(
    os.environ.get("MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS", "600")
)
MEDIGAN_EVALUATION_DEVICE = os.environ.get("MEDIGAN_EVALUATION_DEVICE", "cpu")
MEDIGAN_EVALUATION_CACHE_DIR = DATA_DIR / "evaluation-cache"
MEDIGAN_INCEPTION_WEIGHTS = os.environ.get("MEDIGAN_INCEPTION_WEIGHTS", "")
MEDIGAN_RADIMAGENET_WEIGHTS = os.environ.get("MEDIGAN_RADIMAGENET_WEIGHTS", "")

# The folder broker ignores the host, but kombu warns on every connection that names none.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        # Exchange bindings; kombu's default is a `control` folder in the working directory.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
    # The transport lists its folders on every publish; it does not create them.
    for _folder in ("queue", "processed", "control"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = _env_flag("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "hub.registry.tasks.release_validate_task": {"queue": "validation"},
    "hub.evaluations.tasks.evaluation_run_task": {"queue": "gpu"},
}

# State that survives faults. A validation or an evaluation whose worker was lost (killed, out of
# memory, host gone), or whose task message was lost (the folder broker drops in-flight messages
# when its worker is killed), is found by the janitor: beat runs it every
# MEDIGAN_JANITOR_INTERVAL_SECONDS, the embedded default embeds beat in its worker, and every
# worker runs it once at start-up. A release left `submitted` or an evaluation left `queued`
# longer than MEDIGAN_REQUEUE_AFTER_SECONDS is queued again; one left `validating` or `running`
# past its stale deadline goes back to the queue, and after MEDIGAN_MAX_ATTEMPTS starts it is
# rejected (release) or failed (evaluation) with a note that says so. The stale deadlines are
# derived from the smoke and evaluation time limits at run time unless set here.
MEDIGAN_REQUEUE_AFTER_SECONDS = float(os.environ.get("MEDIGAN_REQUEUE_AFTER_SECONDS", "600"))
MEDIGAN_JANITOR_INTERVAL_SECONDS = float(os.environ.get("MEDIGAN_JANITOR_INTERVAL_SECONDS", "120"))
MEDIGAN_VALIDATION_STALE_SECONDS: float | None = (
    float(os.environ["MEDIGAN_VALIDATION_STALE_SECONDS"])
    if os.environ.get("MEDIGAN_VALIDATION_STALE_SECONDS")
    else None
)
MEDIGAN_EVALUATION_STALE_SECONDS: float | None = (
    float(os.environ["MEDIGAN_EVALUATION_STALE_SECONDS"])
    if os.environ.get("MEDIGAN_EVALUATION_STALE_SECONDS")
    else None
)
MEDIGAN_MAX_ATTEMPTS = int(os.environ.get("MEDIGAN_MAX_ATTEMPTS", "3"))
# What a client is told to wait (Retry-After) when the database stays locked past its timeout.
MEDIGAN_BUSY_RETRY_AFTER_SECONDS = int(os.environ.get("MEDIGAN_BUSY_RETRY_AFTER_SECONDS", "5"))
# Uploads spooled to disk land in a folder of the hub's own, so the janitor can remove what a
# killed web worker left there without touching anyone else's temporary files.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "upload-tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis hands an unacknowledged task to another worker after the visibility timeout, even
    # while the first still runs it; keep that well beyond any legitimate run (the janitor finds
    # lost work long before).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 24 * 3600}
CELERY_BEAT_SCHEDULE = {
    "registry-janitor": {
        "task": "hub.registry.tasks.registry_janitor_run_task",
        "schedule": MEDIGAN_JANITOR_INTERVAL_SECONDS,
    },
    "evaluations-janitor": {
        "task": "hub.evaluations.tasks.evaluations_janitor_run_task",
        "schedule": MEDIGAN_JANITOR_INTERVAL_SECONDS,
    },
    "pinning-janitor": {
        "task": "hub.pinning.tasks.pins_janitor_run_task",
        "schedule": MEDIGAN_JANITOR_INTERVAL_SECONDS,
    },
    # Each upstream has its own interval and backoff; this only looks for the ones that are due.
    "federation-upstreams": {
        "task": "hub.federation.tasks.upstreams_sync_due_task",
        "schedule": float(os.environ.get("MEDIGAN_UPSTREAM_POLL_SECONDS", "60")),
    },
    # Queues a re-check of each pinned Zenodo record whose last check is older than
    # MEDIGAN_ZENODO_RECHECK_SECONDS.
    "pinning-recheck": {
        "task": "hub.pinning.tasks.pins_recheck_due_task",
        "schedule": float(os.environ.get("MEDIGAN_ZENODO_RECHECK_POLL_SECONDS", "3600")),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MEDIGAN_LOG_LEVEL", "INFO")},
}
