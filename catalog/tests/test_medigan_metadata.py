"""A contributor's ``metadata.json`` read despite the template's slips; the licence rule."""

from __future__ import annotations

import pytest

from medigan_catalog.access import AccountInfo
from medigan_catalog.errors import CardInvalidError
from medigan_catalog.medigan_compat import (
    ImportResult,
    card_from_medigan_entry,
    parse_medigan_metadata,
)
from medigan_catalog.snapshot import me_path
from medigan_catalog.validation import licence_problems

# medigan's templates/examples/metadata.json ends like this: "}," and the outer "}" missing.
TEMPLATE_TAIL = '{\n  "00005_X": {\n    "selection": {"tags": ["a", "b",]},\n    "n": "},"\n  },'


def test_valid_json_is_read_as_it_is() -> None:
    data, repairs = parse_medigan_metadata('{"00001_A": {"selection": {}}}')
    assert data == {"00001_A": {"selection": {}}}
    assert repairs == []


def test_the_templates_slips_are_fixed_one_warning_each() -> None:
    data, repairs = parse_medigan_metadata(TEMPLATE_TAIL)
    assert data == {"00005_X": {"selection": {"tags": ["a", "b"]}, "n": "},"}}
    assert [str(repair) for repair in repairs] == [
        "line 3: removed a trailing comma before ']'",
        "line 5: removed a trailing comma at the end of the file",
        "line 5: closed what the file left open: added '}'",
    ]


@pytest.mark.parametrize("text", ['{"a": }', "[1, 2]", '{"a": "unterminated'])
def test_other_damage_is_a_card_error(text: str) -> None:
    with pytest.raises(CardInvalidError):
        parse_medigan_metadata(text)


def test_the_licence_rule_names_each_missing_licence_by_field() -> None:
    entry = {
        "execution": {"image_size": [8, 8]},
        "selection": {"dataset": ["BCDR", "INbreast"], "license": None},
        "description": {"version": "1.0.0"},
    }
    card, _ = card_from_medigan_entry("00102_X", entry, namespace="alice")
    assert [problem["loc"] for problem in licence_problems(card)] == [
        "provenance.licence",
        "provenance.training_data.0.licence",
        "provenance.training_data.1.licence",
    ]


def test_medigans_own_catalogue_names_a_dataset_licence_nowhere(
    medigan_import: ImportResult,
) -> None:
    with_data = [card for card in medigan_import.cards if card.provenance.training_data]
    assert with_data
    assert all(licence_problems(card) for card in with_data)


def test_the_account_answer_reads_a_newer_hubs_fields() -> None:
    account = AccountInfo.model_validate(
        {"username": "alice", "namespace": "alice", "quota_bytes": 10**9, "badges": ["lab"]}
    )
    assert (account.username, account.namespace, account.reserved_namespaces) == (
        "alice",
        "alice",
        (),
    )
    assert me_path() == "/api/v1/me"
