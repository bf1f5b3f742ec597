"""Forms of the contributors' pages: sign-up, API tokens, the submission of a package."""

from __future__ import annotations

import json
import zipfile
from typing import Any, Final

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from medigan_catalog.access import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, TokenScope, Visibility
from medigan_catalog.packaging import CARD_FILENAME

# A card is a few kilobytes; a member named card.json larger than this is not one.
MAX_CARD_BYTES: Final = 1024 * 1024


class SignUpForm(UserCreationForm[User]):
    """A contributor's account: a name (which becomes their namespace), an e-mail, a password."""

    email = forms.EmailField(
        required=True, help_text="where the hub tells you about your submissions"
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class TokenForm(forms.Form):
    """A new API token: its name, what it may do, and how long it lives."""

    name = forms.CharField(max_length=100, help_text="where you will use it, e.g. 'laptop'")
    scopes = forms.MultipleChoiceField(
        choices=[
            (TokenScope.PUSH.value, "push: submit releases"),
            (TokenScope.REVIEW.value, "review: approve or reject releases you may review"),
        ],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[TokenScope.PUSH.value],
        help_text="every token reads the catalogue",
    )
    days = forms.IntegerField(
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        initial=DEFAULT_TOKEN_DAYS,
        help_text=f"1 to {MAX_TOKEN_DAYS} days",
    )


class SubmissionForm(forms.Form):
    """A package zip, with its card inside (``card.json``) or typed into the card field."""

    package = forms.FileField(
        help_text="the package as a zip; its card.json is used unless you give the card below"
    )
    card = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "cols": 80, "spellcheck": "false"}),
        help_text="the card as JSON; checked as you type against the hub's card schema",
    )
    visibility = forms.ChoiceField(
        choices=[(visibility.value, visibility.value) for visibility in Visibility],
        initial=Visibility.PUBLIC.value,
        help_text="for a new model; a new version keeps its model's visibility",
    )

    def card_data(self) -> dict[str, Any] | None:
        """The card typed in the form or found in the zip; None (with a field error) if neither
        gives a JSON object. Call after ``is_valid()``."""
        typed = self.cleaned_data.get("card", "").strip()
        if typed:
            return self._json_object(typed, "card")
        upload = self.cleaned_data.get("package")
        if upload is None:
            return None
        try:
            with zipfile.ZipFile(upload) as archive:
                member = archive.getinfo(CARD_FILENAME)
                if member.file_size > MAX_CARD_BYTES:
                    self.add_error("package", f"its {CARD_FILENAME} is too large to be a card")
                    return None
                text = archive.read(member).decode("utf-8")
        except KeyError:
            self.add_error(
                "package", f"the zip has no {CARD_FILENAME} at its root: add it, or type the card"
            )
            return None
        except (zipfile.BadZipFile, UnicodeDecodeError) as error:
            self.add_error("package", f"not a readable zip with a UTF-8 card: {error}")
            return None
        finally:
            upload.seek(0)
        return self._json_object(text, "package" if not typed else "card")

    def _json_object(self, text: str, field: str) -> dict[str, Any] | None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            self.add_error(field, f"the card is not JSON: {error}")
            return None
        if not isinstance(data, dict):
            self.add_error(field, "the card must be a JSON object")
            return None
        return data
