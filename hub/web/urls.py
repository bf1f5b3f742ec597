"""Routes of the web pages."""

from django.urls import path

from hub.web import views

urlpatterns = [
    path("", views.catalog_page, name="catalog-page"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard-page"),
]
