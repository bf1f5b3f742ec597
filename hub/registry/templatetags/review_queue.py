"""The review queue's size for the admin's index: how many releases wait for the signed-in user.

A tag rather than a context processor, so that the count is read only on the page that shows it.
"""

from __future__ import annotations

from typing import Any

from django import template

from hub.access import request_viewer
from hub.registry import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def review_queue_waiting(context: dict[str, Any]) -> int | None:
    """The number of releases the request's user may review now; None for someone who reviews
    nothing (the queue is not theirs to see)."""
    request = context.get("request")
    if request is None:
        return None
    viewer = request_viewer(request)
    if not selectors.viewer_reviews_anything(viewer):
        return None
    return len(selectors.releases_awaiting_review(viewer))
