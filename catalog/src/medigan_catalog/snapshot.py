"""The hub-to-client wire format, defined once: catalogue snapshot, evaluations, metrics, paths.

The hub renders ``GET /api/v1/catalog``, its leaderboards and its evaluation answers from the
models below; the client parses them with the same models. Nothing else in either restates a
field name, a metric's direction, the "newest release" rule or a URL path.

- :class:`CatalogSnapshot` is the whole document: the hub's serial, when it was rendered, the
  hub's URL and every published release (:class:`SnapshotRelease`) with its card and the hub's
  :class:`EvaluationSummary` list.
- :data:`METRICS` names every metric a ranking may use, whether larger is better, and the aliases
  users type (``fid`` is ``fid_rs``).
- :func:`newest` picks the newest release by semantic version (a release sorts after its own
  pre-releases), never by publication time: a 1.0.1 hotfix published after 2.0.0 is not newest.
- The path builders give every hub path a client or the hub itself needs.

Readers are tolerant: unknown fields are ignored, so an older client reads a newer hub's document;
:func:`parse_snapshot` keeps every release this version can read and lists the others, so one card
of a newer schema never hides the rest of a hub.

Run ``python -m medigan_catalog.snapshot --write docs/schema/snapshot.schema.json`` to refresh the
committed JSON Schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medigan_catalog.access import Visibility
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import CATALOGUE_STATES, ReleaseState, selection_rank
from medigan_catalog.schema import JSON_SCHEMA_DIALECT, SEMVER_RE, Card, schema_command
from medigan_catalog.signing import Attestation

API_ROOT: Final = "/api/v1"
CATALOG_PATH: Final = f"{API_ROOT}/catalog"
RELEASES_PATH: Final = f"{API_ROOT}/releases"
STATUS_PATH: Final = f"{API_ROOT}/status"
MODELS_PATH: Final = f"{API_ROOT}/models"
LEADERBOARDS_PATH: Final = f"{API_ROOT}/leaderboards"
REFERENCE_SETS_PATH: Final = f"{API_ROOT}/reference-sets"
# The account of the token that calls it: who pushes, and into which namespace by default.
ME_PATH: Final = f"{API_ROOT}/me"
# The change feed: what changed in the caller's catalogue after a serial, page by page.
CHANGES_PATH: Final = f"{API_ROOT}/changes"
TOKENS_PATH: Final = f"{API_ROOT}/tokens"
ORGANISATIONS_PATH: Final = f"{API_ROOT}/organisations"
NAMESPACES_PATH: Final = f"{API_ROOT}/namespaces"
# The header every catalogue answer carries its viewer's serial in.
SERIAL_HEADER: Final = "X-Hub-Serial"


# --- errors --------------------------------------------------------------------------------


class UnknownMetricError(CatalogError):
    """A metric name that is neither a field of :data:`METRICS` nor one of their aliases."""

    code = ErrorCode.BAD_REQUEST

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(
            f"unknown metric {name!r}; known: {', '.join(known)}", {"known": list(known)}
        )
        self.name = name


class SnapshotInvalidError(CatalogError):
    """A document that should be a catalogue snapshot is not one."""

    code = ErrorCode.SERVER_ERROR

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a catalogue snapshot: {reason}")
        self.reason = reason


# --- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A hub-computed metric: its field in :class:`EvaluationSummary` and how it ranks."""

    field: str
    larger_is_better: bool
    aliases: tuple[str, ...]
    label: str


# The metrics a ranking or a leaderboard may sort by. ``fid_rr_std`` and ``kid_std`` are spreads
# that qualify a mean, not something to rank by, so they are fields but not metrics.
METRICS: Final[tuple[Metric, ...]] = (
    Metric("fid_rs", False, ("fid",), "FID vs reference"),
    Metric("fid_rr_mean", False, ("fid_rr",), "FID real vs real"),
    Metric("r_fid", True, ("rfid",), "FID ratio (real-real / synthetic-real)"),
    Metric("kid_mean", False, ("kid",), "KID"),
    Metric("precision", True, (), "precision"),
    Metric("recall", True, (), "recall"),
)
METRIC_FIELDS: Final[tuple[str, ...]] = tuple(metric.field for metric in METRICS)
_METRIC_BY_NAME: Final[Mapping[str, Metric]] = {
    name: metric for metric in METRICS for name in (metric.field, *metric.aliases)
}


def metric_named(name: str) -> Metric:
    """The metric ``name`` denotes (a field or an alias, any case); raise UnknownMetricError."""
    metric = _METRIC_BY_NAME.get(name.strip().lower())
    if metric is None:
        raise UnknownMetricError(name, sorted(_METRIC_BY_NAME))
    return metric


# --- wire models ---------------------------------------------------------------------------


class _WireModel(BaseModel):
    """Frozen, and tolerant of fields a newer hub adds: an older client must still read it."""

    # Validators are built on first use, not at import (see the card schema's blocks).
    model_config = ConfigDict(
        frozen=True, extra="ignore", protected_namespaces=(), defer_build=True
    )


class EvaluationSummary(_WireModel):
    """One hub-computed evaluation of a release against a reference set, with its provenance.

    Numbers are comparable only for the same reference set, extractor and preprocessing;
    ``seed`` and ``num_samples`` reproduce the samples behind them with ``client.generate``.
    """

    reference: str = Field(min_length=1)
    reference_split: str | None = None
    extractor: str = Field(min_length=1)
    comparable_with_published: bool = False
    fid_rs: float | None = None
    fid_rr_mean: float | None = None
    fid_rr_std: float | None = None
    r_fid: float | None = None
    kid_mean: float | None = None
    kid_std: float | None = None
    precision: float | None = None
    recall: float | None = None
    num_samples: int | None = None
    seed: int | None = None
    preprocess: dict[str, Any] = Field(default_factory=dict)
    extractor_weights_sha256: str | None = None
    reference_sha256: str | None = None
    num_reference: int | None = None
    software: dict[str, Any] | None = None
    samples_sha256: str | None = None
    finished_at: datetime | None = None
    # Operational, not provenance: answered with a release's evaluations, left out (not even
    # null) of the catalogue snapshot and leaderboards, which clients download whole.
    timings: dict[str, float] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description=(
            "Seconds of each phase of the hub's run: package_s, reference_load_s, "
            "load_extractor_s, features_reference_s, generate_s, features_generated_s, "
            "metrics_s, total_s (docs/evaluation.md)"
        ),
    )

    def value(self, metric: str | Metric) -> float | None:
        """The value of ``metric`` (a :class:`Metric`, a field name or an alias), or None."""
        field = metric.field if isinstance(metric, Metric) else metric_named(metric).field
        value = getattr(self, field)
        return None if value is None else float(value)


class LeaderboardRow(EvaluationSummary):
    """An evaluation on a leaderboard, with the release it belongs to."""

    model_id: str
    version: str
    title: str
    modality: str


class Leaderboard(_WireModel):
    """``GET /api/v1/leaderboards[/<reference>]``: rows sorted by ``sort``, missing values last."""

    reference: str | None
    sort: str
    note: str
    rows: tuple[LeaderboardRow, ...]


class HubInfo(_WireModel):
    """Which hub rendered a snapshot."""

    url: str


class ReleaseOrigin(_WireModel):
    """Where a mirrored release came from: the upstream hub, its id and serial there, and the
    sha256 of its package as the upstream announced it (which the mirror's copy must equal)."""

    hub: str
    url: str
    release_id: str
    serial: int = Field(ge=0)
    sha256: str | None = None


def _is_none(value: object) -> bool:
    return value is None


class ReleasePin(_WireModel):
    """The DOI a hub pinned for a release: the Zenodo record that holds its package's bytes.

    ``concept_doi`` names every version of the model's record (a hub-minted DOI's); ``broken``
    says the hub's last re-check found the record changed or gone, and ``note`` what it found;
    ``checked_at`` is when the record was last checked as of the document's serial (a re-check
    that changes nothing does not move the serial, so it may be older than the latest check).
    """

    doi: str
    concept_doi: str | None = None
    broken: bool = False
    note: str | None = None
    checked_at: datetime | None = None


class ReleaseNotice(_WireModel):
    """Why a maintainer deprecated or yanked a release, and which model to use instead.

    ``replacement`` is a model id (``ns/name``), set by a deprecation that names one.
    """

    reason: str = Field(min_length=1)
    replacement: str | None = Field(default=None, exclude_if=_is_none)
    at: datetime | None = None

    def describe(self, state: str) -> str:
        """One line for a user: ``deprecated: <reason>; use <replacement> instead``."""
        text = f"{state}: {self.reason}"
        return f"{text}; use {self.replacement} instead" if self.replacement else text


def _is_published(value: object) -> bool:
    return value == ReleaseState.PUBLISHED


class SnapshotRelease(_WireModel):
    """One release in a catalogue snapshot: its card, its state and the hub's evaluations.

    In the snapshot each card artifact the hub stores lists the hub's absolute download URL first.
    ``state`` is ``published`` (left out of the document), ``deprecated`` or ``yanked``: the two
    last stay downloadable by exact version, and ``notice`` says why and what replaces them
    (:func:`medigan_catalog.lifecycle.selection_rank` says which release a bare model id means).
    ``attestation`` is the publishing hub's signature over the release's content identity
    (``medigan_catalog.signing``); ``origin`` is set on a mirror's copy of another hub's release;
    ``pin`` is the DOI the hub pinned (:class:`ReleasePin`). All three are left out of the
    document when absent.
    """

    model_id: str
    version: str
    published_at: datetime | None = None
    state: ReleaseState = Field(default=ReleaseState.PUBLISHED, exclude_if=_is_published)
    notice: ReleaseNotice | None = Field(default=None, exclude_if=_is_none)
    # Who may see the model on its hub; a client keeps what is not public readable only by its
    # user. Absent in documents of hubs before access control, where everything was public.
    visibility: Visibility = Visibility.PUBLIC
    card: Card
    evaluations: tuple[EvaluationSummary, ...] = ()
    attestation: Attestation | None = Field(default=None, exclude_if=_is_none)
    origin: ReleaseOrigin | None = Field(default=None, exclude_if=_is_none)
    pin: ReleasePin | None = Field(default=None, exclude_if=_is_none)

    @model_validator(mode="after")
    def _names_its_card(self) -> Self:
        if (self.model_id, self.version) != (self.card.model_id, self.card.version):
            raise ValueError(
                f"the entry {self.model_id}@{self.version} carries the card of "
                f"{self.card.model_id}@{self.card.version}"
            )
        if self.state not in CATALOGUE_STATES:
            raise ValueError(f"a catalogue does not list {self.state.value} releases")
        return self

    @property
    def warning(self) -> str | None:
        """What a user of this release should be told (deprecated or yanked), or None."""
        if self.state is ReleaseState.PUBLISHED:
            return None
        notice = self.notice or ReleaseNotice(reason="no reason given")
        return f"{self.model_id}@{self.version} is {notice.describe(self.state.value)}"


class CatalogSnapshot(_WireModel):
    """``GET /api/v1/catalog``: every published, deprecated or yanked release, in catalogue order
    (model id, then publication), at one serial of the hub's catalogue."""

    serial: int = Field(ge=0)
    generated_at: datetime | None = None
    hub: HubInfo
    # An opaque name of the viewer's scope (which models their catalogue holds): the serial
    # counts that scope's changes, and a feed page of another scope does not apply to it.
    scope: str | None = None
    releases: tuple[SnapshotRelease, ...] = ()

    def newest_releases(self) -> list[SnapshotRelease]:
        """The newest release of each model, in catalogue order of the models."""
        return newest_per_model(self.releases)


class CatalogChange(_WireModel):
    """One change of a viewer's catalogue, with what it takes to apply it.

    ``releases`` are the model's catalogue entries to put in place (added or replaced, each
    whole, as the snapshot carries them, deprecated or yanked ones with their state); ``removed``
    names releases (``ns/name@version``) that left the viewer's catalogue (the model became
    invisible to them, a release was withdrawn), and ``removed_states`` says why each left, where
    it still exists: ``withdrawn`` (a mirror marks its copy so), or absent when the viewer merely
    lost sight of it.
    Entries are the release's state when the page was answered, so applying a feed from any
    serial up to the current one gives the current snapshot.
    """

    serial: int = Field(ge=1)
    kind: str
    model_id: str
    releases: tuple[SnapshotRelease, ...] = ()
    removed: tuple[str, ...] = ()
    removed_states: dict[str, str] = Field(default_factory=dict, exclude_if=lambda value: not value)


class ChangePage(_WireModel):
    """``GET /api/v1/changes?since=S&limit=N``: the caller's changes after ``since``, in order.

    ``serial`` is where the next page starts (the last change's serial, or ``since`` when there
    is none); ``latest`` is the caller's current catalogue serial; ``more`` says whether changes
    after ``serial`` are left for another page.
    """

    since: int = Field(ge=0)
    serial: int = Field(ge=0)
    latest: int = Field(ge=0)
    scope: str | None = None
    more: bool = False
    changes: tuple[CatalogChange, ...] = ()


def release_key(model_id: str, version: str) -> str:
    """``ns/name@version``: how the feed names a release it removes."""
    return f"{model_id}@{version}"


def apply_change_page(snapshot: CatalogSnapshot, page: ChangePage) -> CatalogSnapshot:
    """The snapshot with a feed page applied: the one definition of applying the feed.

    The result lists releases in catalogue order (model id, then publication, then version) and
    carries the page's serial; a page that starts after the snapshot's serial is refused, since
    the changes between would be missing.
    """
    if page.since > snapshot.serial:
        raise SnapshotInvalidError(
            f"the page starts after serial {page.since}, the snapshot is at {snapshot.serial}"
        )
    if page.scope is not None and snapshot.scope is not None and page.scope != snapshot.scope:
        raise SnapshotInvalidError(
            "the page is of another viewer's catalogue (a new token or new memberships): "
            "sync the whole snapshot"
        )
    entries = {release_key(entry.model_id, entry.version): entry for entry in snapshot.releases}
    for change in page.changes:
        for removed in change.removed:
            entries.pop(removed, None)
        for entry in change.releases:
            entries[release_key(entry.model_id, entry.version)] = entry
    ordered = sorted(entries.values(), key=_catalogue_order)
    return snapshot.model_copy(
        update={
            "serial": page.serial,
            "scope": page.scope if page.scope is not None else snapshot.scope,
            "releases": tuple(ordered),
        }
    )


def _catalogue_order(entry: SnapshotRelease) -> tuple[str, str, str, VersionKey]:
    namespace, _, name = entry.model_id.partition("/")
    published = entry.published_at.isoformat() if entry.published_at is not None else ""
    return namespace, name, published, version_key(entry.version)


@dataclass(frozen=True)
class ParsedSnapshot:
    """A snapshot as far as this version can read it, and what it had to leave out (and why)."""

    snapshot: CatalogSnapshot
    skipped: tuple[str, ...]


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "document"
    return f"{where}: {problem['msg']}"


def parse_snapshot(data: object) -> ParsedSnapshot:
    """Read a catalogue document, keeping each release this version of the schema can read.

    Raises :class:`SnapshotInvalidError` when the document itself (serial, hub, the release list)
    is not a snapshot; a release whose card or evaluations do not parse is left out and named in
    ``skipped`` with the reason.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("releases"), list):
        raise SnapshotInvalidError("the document is not a catalogue snapshot (no release list)")
    try:
        envelope = CatalogSnapshot.model_validate({**data, "releases": []})
    except ValidationError as error:
        raise SnapshotInvalidError(_first_problem(error)) from None
    releases: list[SnapshotRelease] = []
    skipped: list[str] = []
    for entry in data["releases"]:
        label = (
            f"{entry.get('model_id')}@{entry.get('version')}"
            if isinstance(entry, Mapping)
            else repr(entry)[:80]
        )
        try:
            releases.append(SnapshotRelease.model_validate(entry))
        except ValidationError as error:
            skipped.append(f"{label}: {_first_problem(error)}")
    return ParsedSnapshot(envelope.model_copy(update={"releases": tuple(releases)}), tuple(skipped))


# --- the newest release --------------------------------------------------------------------

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]
_T = TypeVar("_T")


def version_key(version: str) -> VersionKey:
    """Sort key of a semantic version: numeric parts, a release after its own pre-releases.

    Pre-release identifiers compare as semver says (numeric ones below alphanumeric ones); build
    metadata is ignored; a string that is not semver sorts before every version.
    """
    match = SEMVER_RE.fullmatch(version)
    if match is None:
        return (-1, -1, -1, -1, ())
    major, minor, patch, pre = match.group(1), match.group(2), match.group(3), match.group(4)
    pre_key: tuple[tuple[int, int | str], ...] = ()
    if pre:
        pre_key = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre_key)


def _version_of(item: object) -> str:
    return str(getattr(item, "version"))  # noqa: B009 - any object with a version attribute


def newest(items: Iterable[_T], *, version: Callable[[_T], str] = _version_of) -> _T | None:
    """The item with the highest semantic version (the first of equals), or None if empty."""
    best: _T | None = None
    best_key: VersionKey | None = None
    for item in items:
        key = version_key(version(item))
        if best_key is None or key > best_key:
            best, best_key = item, key
    return best


def _state_of(item: object) -> str:
    # Cards and other state-less items count as published.
    return str(getattr(item, "state", ReleaseState.PUBLISHED.value))


def newest_selectable(
    items: Iterable[_T],
    *,
    version: Callable[[_T], str] = _version_of,
    state: Callable[[_T], str] = _state_of,
) -> _T | None:
    """The release a model id without a version means: the newest published one, else the
    newest deprecated one, never a yanked one (:func:`~medigan_catalog.lifecycle.selection_rank`).
    None when nothing is selectable."""
    ranked: dict[int, list[_T]] = {}
    for item in items:
        rank = selection_rank(state(item))
        if rank is not None:
            ranked.setdefault(rank, []).append(item)
    if not ranked:
        return None
    return newest(ranked[min(ranked)], version=version)


def newest_per_model(
    items: Iterable[_T],
    *,
    model_id: Callable[[_T], str] = lambda item: str(getattr(item, "model_id")),  # noqa: B009
    version: Callable[[_T], str] = _version_of,
    state: Callable[[_T], str] = _state_of,
) -> list[_T]:
    """The selectable release of each model id (:func:`newest_selectable`), models in the order
    they first appear; a model whose releases are all yanked is left out."""
    groups: dict[str, list[_T]] = {}
    for item in items:
        groups.setdefault(model_id(item), []).append(item)
    chosen = (newest_selectable(group, version=version, state=state) for group in groups.values())
    return [item for item in chosen if item is not None]


# --- paths ---------------------------------------------------------------------------------


def path_segment(text: str) -> str:
    """One path segment: every character but unreserved ones percent-encoded, ``/`` included."""
    return quote(text, safe="")


def _split_model_id(model_id: str) -> tuple[str, str]:
    namespace, _, name = model_id.partition("/")
    return namespace, name


def model_path(model_id: str) -> str:
    """``/api/v1/models/<namespace>/<name>``: a model and its releases."""
    namespace, name = _split_model_id(model_id)
    return f"{MODELS_PATH}/{path_segment(namespace)}/{path_segment(name)}"


def release_path(model_id: str, version: str) -> str:
    """``…/releases/<version>``: a release's status, checks and card."""
    return f"{model_path(model_id)}/releases/{path_segment(version)}"


def artifact_path(model_id: str, version: str, filename: str) -> str:
    """``…/releases/<version>/artifacts/<filename>``: an artifact's bytes."""
    return f"{release_path(model_id, version)}/artifacts/{path_segment(filename)}"


def sample_grid_path(model_id: str, version: str) -> str:
    """``…/releases/<version>/sample-grid``: the PNG grid validation made."""
    return f"{release_path(model_id, version)}/sample-grid"


def review_path(model_id: str, version: str) -> str:
    """``…/releases/<version>/review``: a reviewer's decision."""
    return f"{release_path(model_id, version)}/review"


# The lifecycle actions a release answers at ``…/releases/<version>/<action>`` (docs/api.md).
LIFECYCLE_ACTIONS: Final = ("deprecate", "yank", "withdraw")


def lifecycle_path(model_id: str, version: str, action: str) -> str:
    """``…/releases/<version>/<action>``: deprecate, yank or withdraw a release."""
    if action not in LIFECYCLE_ACTIONS:
        raise ValueError(f"{action!r} is not one of {', '.join(LIFECYCLE_ACTIONS)}")
    return f"{release_path(model_id, version)}/{action}"


def evaluations_path(model_id: str, version: str) -> str:
    """``…/releases/<version>/evaluations``: the hub's evaluations of a release."""
    return f"{release_path(model_id, version)}/evaluations"


def changes_path(since: int, limit: int | None = None) -> str:
    """``/api/v1/changes?since=S[&limit=N]``: the caller's catalogue changes after ``since``."""
    query = f"since={int(since)}" + (f"&limit={int(limit)}" if limit is not None else "")
    return f"{CHANGES_PATH}?{query}"


def me_path() -> str:
    """``/api/v1/me``: the calling token's account and default namespace."""
    return ME_PATH


def leaderboard_path(reference: str | None = None) -> str:
    """``/api/v1/leaderboards`` or ``/api/v1/leaderboards/<reference>``."""
    return (
        LEADERBOARDS_PATH if reference is None else f"{LEADERBOARDS_PATH}/{path_segment(reference)}"
    )


_TOKEN_ID = re.compile(r"^[0-9]+$")


def token_path(token_id: int | str) -> str:
    """``/api/v1/tokens/<id>``: one of the caller's tokens (``DELETE`` revokes it)."""
    text = str(token_id)
    if not _TOKEN_ID.match(text):
        raise ValueError(f"a token id is a number, not {token_id!r}")
    return f"{TOKENS_PATH}/{text}"


def organisation_path(name: str) -> str:
    """``/api/v1/organisations/<name>``: an organisation and its members."""
    return f"{ORGANISATIONS_PATH}/{path_segment(name)}"


def members_path(organisation: str) -> str:
    """``…/organisations/<name>/members``: list (``GET``) or add (``POST``) members."""
    return f"{organisation_path(organisation)}/members"


def member_path(organisation: str, username: str) -> str:
    """``…/members/<username>``: remove a member (``DELETE``)."""
    return f"{members_path(organisation)}/{path_segment(username)}"


def visibility_path(model_id: str) -> str:
    """``/api/v1/models/<ns>/<name>/visibility``: read or change who sees a model."""
    return f"{model_path(model_id)}/visibility"


def visibility_review_path(model_id: str) -> str:
    """``…/visibility/review``: a hub reviewer's decision on a request to make it public."""
    return f"{visibility_path(model_id)}/review"


# --- JSON Schema ---------------------------------------------------------------------------


def export_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a catalogue snapshot, as committed in ``docs/schema/``."""
    schema = CatalogSnapshot.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def render_json_schema() -> str:
    """The committed text of ``docs/schema/snapshot.schema.json``: indented JSON and a newline."""
    return json.dumps(export_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the snapshot JSON Schema, or write it to the file given with ``--write``."""
    return schema_command(
        render_json_schema,
        prog="python -m medigan_catalog.snapshot",
        description=main.__doc__,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
