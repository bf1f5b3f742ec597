"""E-mail to contributors: each state change of a release they pushed, through Django's mail.

The message says what the release moved from and to, the note that came with it (a reviewer's
reasons, a failed check) and where to see it. It goes out from a Celery task queued once the
transition has committed, so a slow mail server never holds a release's row or a reviewer's
request; the embedded default prints it (console backend), tests keep it (locmem), and
production sets ``MEDIGAN_EMAIL_BACKEND`` and the SMTP settings.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from hub.registry.models import ReleaseEvent

logger = logging.getLogger(__name__)


def release_event_mail(*, event_id: int) -> bool:
    """Send the mail of one state change to the release's contributor; False when there is no
    one to tell (a mirrored or imported release, an account without an address)."""
    event = (
        ReleaseEvent.objects.select_related("release__generative_model", "release__submitted_by")
        .filter(pk=event_id)
        .first()
    )
    if event is None or event.release.submitted_by is None:
        return False
    recipient = event.release.submitted_by.email
    if not recipient:
        return False
    release = event.release
    page = settings.MEDIGAN_PUBLIC_URL.rstrip("/") + reverse(
        "web-submission",
        kwargs={
            "namespace": release.generative_model.namespace,
            "name": release.generative_model.name,
            "version": release.version,
        },
    )
    lines = [
        f"Your release {release.release_id} moved from {event.from_state or 'nothing'} "
        f"to {event.to_state}.",
        "",
    ]
    if event.note:
        lines += ["Note:", event.note, ""]
    lines += [f"See it, with its checks and history: {page}", "", "-- medigan hub"]
    send_mail(
        subject=f"[medigan hub] {release.release_id}: {event.to_state.replace('_', ' ')}",
        message="\n".join(lines),
        from_email=None,
        recipient_list=[recipient],
    )
    logger.info("mailed %s about %s -> %s", recipient, release.release_id, event.to_state)
    return True
