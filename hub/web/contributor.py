"""Contributors' pages: sign-up, API tokens, the submission form and "my submissions".

Every write goes through the same services as the API (``hub.accounts.services``,
``hub.registry.services``); these views only turn forms into calls and errors into messages
beside their fields.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from django.views.decorators.http import require_POST

from hub.access import request_viewer
from hub.accounts import selectors as account_selectors
from hub.accounts import services as account_services
from hub.registry import selectors, services
from hub.registry.models import Release
from hub.web.forms import SignUpForm, SubmissionForm, TokenForm
from hub.web.uploads import upload_too_large
from medigan_catalog.access import TokenScope, Visibility
from medigan_catalog.errors import CardInvalidError, CatalogError
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.snapshot import release_path
from medigan_catalog.validation import validate_card

# Releases whose page keeps polling for news: validation or review still to come.
_LIVE_STATES = frozenset(
    {ReleaseState.SUBMITTED, ReleaseState.VALIDATING, ReleaseState.IN_REVIEW, ReleaseState.APPROVED}
)
_WITHDRAWABLE = frozenset({ReleaseState.SUBMITTED, ReleaseState.IN_REVIEW})


def _user(request: HttpRequest) -> User:
    """The signed-in user of a view behind ``login_required``."""
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


def signup(request: HttpRequest) -> HttpResponse:
    """Create a contributor's account (and namespace), sign them in, show their tokens page."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = account_services.user_sign_up(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except CatalogError as error:
            form.add_error("username", error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                f"Welcome, {user.username}: you push under the namespace "
                f"{account_selectors.user_default_namespace(user)}. Create a token to push "
                "from the command line, or submit a package from this site.",
            )
            return redirect("web-tokens")
    return render(request, "web/signup.html", {"form": form})


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """List, create and revoke the signed-in user's API tokens; a new key is shown once."""
    creating = request.method == "POST" and request.POST.get("action") == "create"
    form = TokenForm(request.POST if creating else None)
    new_key = ""
    if request.method == "POST" and request.POST.get("action") == "revoke":
        chosen = request.POST.get("token", "")
        tokens_chosen = account_selectors.api_token_list(user=_user(request)).filter(
            pk=int(chosen) if chosen.isdigit() else -1
        )
        for item in tokens_chosen:
            account_services.api_token_revoke(token=item)
            messages.success(request, f"Token {item.name} ({item.key_prefix}…) revoked.")
        return redirect("web-tokens")
    if creating and form.is_valid():
        try:
            token_row, new_key = account_services.api_token_create(
                user=_user(request),
                name=form.cleaned_data["name"],
                scopes=[TokenScope.READ, *map(TokenScope, form.cleaned_data["scopes"])],
                expires_in_days=form.cleaned_data["days"],
            )
        except CatalogError as error:
            form.add_error(None, error.message)
        else:
            form = TokenForm()
            messages.success(request, f"Token {token_row.name} created.")
    return render(
        request,
        "web/tokens.html",
        {
            "form": form,
            "new_key": new_key,
            "tokens": account_selectors.api_token_list(user=_user(request)),
        },
    )


def _card_problems(error: CardInvalidError) -> list[dict[str, str]]:
    return [
        {"loc": problem["loc"] or "(card)", "msg": problem["msg"]} for problem in error.problems
    ]


def _prefilled_card(request: HttpRequest) -> str:
    """The card of the user's release named in ``?from=ns/name@version``, its patch bumped: the
    start of a new version after a rejection."""
    source = request.GET.get("from", "")
    model_id, _, version = source.rpartition("@")
    namespace, _, name = model_id.partition("/")
    if not (namespace and name and version):
        return ""
    try:
        release = _own_release(request, namespace, name, version)
    except Http404:
        return ""
    card = dict(release.card)
    card.pop("artifacts", None)
    major, minor, patch = [*version.split("-")[0].split("."), "0", "0"][:3]
    card["version"] = f"{major}.{minor}.{int(patch) + 1 if patch.isdigit() else 0}"
    description = card.get("description")
    if isinstance(description, dict) and "version" in description:
        # medigan's description block repeats the version; the schema wants the two equal.
        card["description"] = {**description, "version": card["version"]}
    return json.dumps(card, indent=2)


@login_required
def submit(request: HttpRequest) -> HttpResponse:
    """The submission form: a package zip and its card; errors beside their fields."""
    card_problems: list[dict[str, str]] = []
    if request.method == "POST" and upload_too_large(request):
        # The body was dropped past the package: a bound, empty form carries the error.
        form = SubmissionForm({"visibility": Visibility.PUBLIC.value}, MultiValueDict())
        form.is_valid()
        form.errors.pop("package", None)
        form.add_error(
            "package",
            f"the package is larger than the hub's limit of "
            f"{int(settings.MEDIGAN_MAX_PACKAGE_BYTES):,} bytes; nothing was stored",
        )
        return render(request, "web/submit.html", {"form": form, "card_problems": []}, status=413)
    if request.method == "POST":
        form = SubmissionForm(request.POST, request.FILES)
        if form.is_valid():
            card_data = form.card_data()
            if card_data is not None:
                try:
                    release = services.release_submit(
                        user=_user(request),
                        card_data=card_data,
                        package=form.cleaned_data["package"],
                        viewer=request_viewer(request),
                        visibility=Visibility(form.cleaned_data["visibility"]),
                    )
                except CardInvalidError as error:
                    card_problems = _card_problems(error)
                    form.add_error(
                        "card" if form.cleaned_data.get("card") else "package",
                        "the card does not pass the schema (each problem is listed by field)",
                    )
                except CatalogError as error:
                    form.add_error(None, error.message)
                else:
                    messages.success(request, f"{release.release_id} submitted: validation runs.")
                    return redirect(
                        "web-submission",
                        namespace=release.generative_model.namespace,
                        name=release.generative_model.name,
                        version=release.version,
                    )
        status = 400
    else:
        form = SubmissionForm(initial={"card": _prefilled_card(request)})
        status = 200
    return render(
        request,
        "web/submit.html",
        {"form": form, "card_problems": card_problems},
        status=status,
    )


@login_required
@require_POST
def card_check(request: HttpRequest) -> JsonResponse:
    """The card typed so far against the hub's card schema: ``{"ok", "problems": [{loc, msg}]}``.

    The same check as ``medigan-client validate`` and the push; the form calls it as you type.
    """
    try:
        data = json.loads(request.body or b"{}")
    except json.JSONDecodeError as error:
        return JsonResponse({"ok": False, "problems": [{"loc": "(card)", "msg": str(error)}]})
    if not isinstance(data, dict):
        problem = {"loc": "(card)", "msg": "the card must be a JSON object"}
        return JsonResponse({"ok": False, "problems": [problem]})
    try:
        validate_card(data)
    except CardInvalidError as error:
        return JsonResponse({"ok": False, "problems": _card_problems(error)})
    return JsonResponse({"ok": True, "problems": []})


@login_required
def submissions(request: HttpRequest) -> HttpResponse:
    """Every release the signed-in user pushed, newest first, with its state."""
    return render(
        request,
        "web/submissions.html",
        {"releases": selectors.releases_submitted_by(_user(request))},
    )


def _own_release(request: HttpRequest, namespace: str, name: str, version: str) -> Release:
    """The signed-in user's release ``namespace/name@version``; 404 for anything else."""
    release = selectors.release_submitted_by(
        user=_user(request),
        namespace=namespace,
        name=name,
        version=version,
    )
    if release is None:
        raise Http404("no such submission of yours")
    return release


@login_required
def submission(request: HttpRequest, namespace: str, name: str, version: str) -> HttpResponse:
    """One of the user's releases: its state (kept live), checks, the reviewers' notes."""
    release = _own_release(request, namespace, name, version)
    return render(
        request,
        "web/submission.html",
        {
            "release": release,
            "checks": list(release.checks.order_by("id")),
            "events": list(release.events.select_related("actor").order_by("id")),
            "grid_url": selectors.release_sample_grid_path(release),
            "live": release.state in _LIVE_STATES,
            "status_url": release_path(release.model_id, release.version),
            "withdrawable": release.state in _WITHDRAWABLE,
            "rejected": release.state == ReleaseState.REJECTED,
            "new_version_url": f"{reverse('web-submit')}?from={release.release_id}",
        },
    )


@login_required
@require_POST
def submission_withdraw(
    request: HttpRequest, namespace: str, name: str, version: str
) -> HttpResponse:
    """Withdraw one of the user's releases before publication."""
    release = _own_release(request, namespace, name, version)
    try:
        services.release_withdraw_submission(
            release_id=release.pk,
            actor=_user(request),
            note=request.POST.get("note", ""),
        )
    except CatalogError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{release.release_id} withdrawn.")
    return redirect("web-submission", namespace=namespace, name=name, version=version)
