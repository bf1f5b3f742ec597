"""gunicorn settings of the hub, for the embedded default and for containers."""

import os

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Pushes upload packages of up to hundreds of MB; give slow links time.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
