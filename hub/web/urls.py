"""Routes of the web pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from hub.web import contributor, views
from hub.web import review as review_pages

_SUBMISSION = "submissions/<str:namespace>/<str:name>/<str:version>/"

urlpatterns = [
    path("", views.catalog_page, name="catalog-page"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard-page"),
    path("models/<str:namespace>/<str:name>/", views.model_page, name="model-page"),
    path(
        "models/<str:namespace>/<str:name>/<str:version>/",
        views.model_page,
        name="model-version-page",
    ),
    path("accounts/signup/", contributor.signup, name="web-signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="web-login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="web-logout"),
    path("accounts/tokens/", contributor.tokens, name="web-tokens"),
    path("submit/", contributor.submit, name="web-submit"),
    path("submit/check-card", contributor.card_check, name="web-card-check"),
    path("submissions/", contributor.submissions, name="web-submissions"),
    path(_SUBMISSION, contributor.submission, name="web-submission"),
    path(f"{_SUBMISSION}withdraw", contributor.submission_withdraw, name="web-submission-withdraw"),
]

# The reviewer's pages (hub.web.review): the queue, and one release's review.
urlpatterns += [
    path("review/", review_pages.review_queue, name="review-queue"),
    path(
        "review/<str:namespace>/<str:name>/<str:version>/",
        review_pages.review_release,
        name="review-release",
    ),
]
