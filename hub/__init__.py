"""medigan hub: the Django project that stores, validates, reviews and publishes models."""

from hub.celery import app as celery_app

__all__ = ["celery_app"]
