"""The reviewer's pages: the queue of releases waiting for them, and a release's review page
where they approve or reject it with a note.

Only signed-in people who may review something get in (the admin's rule,
``selectors.viewer_reviews_anything``); anyone else signed in gets 403, and nobody signed in is
sent to the admin's sign-in. Each decision goes through ``services.release_review``, which
decides whether this reviewer may review this release (four eyes included); its refusal is shown
on the page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from hub.access import Viewer, request_viewer
from hub.api.errors import STATUS_BY_CODE
from hub.registry import selectors, services
from hub.web import review_page as review_pages
from medigan_catalog.errors import CatalogError


class ReviewDecisionForm(forms.Form):
    """A decision on one release; the note, which the contributor reads, is required."""

    # Sent by the button pressed: Approve or Reject.
    decision = forms.ChoiceField(
        choices=[(decision, decision) for decision in review_pages.DECIDED]
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
        help_text="Why you approve or reject it; the contributor reads this.",
    )


def _reviewer(request: HttpRequest) -> tuple[User, Viewer] | HttpResponse:
    """The signed-in reviewer, a redirect to sign in, or PermissionDenied for anyone else."""
    if not isinstance(request.user, User) or not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), login_url=reverse("web-login"))
    viewer = request_viewer(request)
    if not selectors.viewer_reviews_anything(viewer):
        raise PermissionDenied("only reviewers see the review queue")
    return request.user, viewer


def review_queue(request: HttpRequest) -> HttpResponse:
    """The releases in review this user may approve or reject, oldest first."""
    reviewer = _reviewer(request)
    if isinstance(reviewer, HttpResponse):
        return reviewer
    _, viewer = reviewer
    return render(request, "web/review_queue.html", {"rows": review_pages.queue_rows(viewer)})


def review_release(request: HttpRequest, namespace: str, name: str, version: str) -> HttpResponse:
    """A release laid out for review; a POST approves or rejects it with a note."""
    reviewer = _reviewer(request)
    if isinstance(reviewer, HttpResponse):
        return reviewer
    user, viewer = reviewer
    release = selectors.release_get_visible(
        namespace=namespace, name=name, version=version, viewer=viewer
    )
    if release is None:
        raise Http404("no such release, or not visible to you")
    status = 200
    if request.method == "POST":
        form = ReviewDecisionForm(request.POST)
        if form.is_valid():
            decision = form.cleaned_data["decision"]
            try:
                services.release_review(
                    release_id=release.pk,
                    reviewer=user,
                    decision=decision,
                    note=form.cleaned_data["note"],
                )
            except CatalogError as error:
                form.add_error(None, error.message)
                status = STATUS_BY_CODE.get(error.code, 400)
            else:
                messages.success(request, f"{release.release_id}: {review_pages.DECIDED[decision]}")
                return redirect("review-queue")
        else:
            status = 400
    else:
        form = ReviewDecisionForm()
    page = review_pages.review_page(release, viewer)
    return render(
        request,
        "web/review_release.html",
        {"page": page, "card": page.card, "form": form},
        status=status,
    )
