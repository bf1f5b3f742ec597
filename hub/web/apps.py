"""Django app configuration of the web pages."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    """Human-facing pages."""

    name = "hub.web"
    label = "web"
