"""The Python face of the client: :class:`Client` ties settings, cache, hub and runtime together.

>>> from medigan_client import Client
>>> client = Client()                      # settings from env / config file / defaults
>>> client.sync()                          # fetch the catalogue (ETag aware)
>>> [hit.card.model_id for hit in client.search("mammography dcgan")]
>>> client.generate("zoo/chestxray-dcgan-64", 100, "out/")

Search, rank and show work on the cached catalogue, offline; the first call syncs once when
nothing is cached. torch is imported only when a model runs.

Several hubs (``Client(hubs=[HubEntry(...), ...])`` or ``[[hubs]]`` in the config file, see
docs/client-federation.md): each hub has its own cache, serial, scope, token and pinned keys.
A model reference resolves on the first hub, in priority order, that carries it, or on the hub
it names (``hub-name:ns/name[@version]``); two hubs carrying the same release with different
content make the client refuse to choose (:class:`~medigan_client.errors.HubConflictError`)
unless the config's ``[pins]`` names the hub (:meth:`Client.locate`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from medigan_catalog.search import (
    SearchHit,
    medigan_rank,
    parse_filter_terms,
    rank,
    split_query,
)
from medigan_catalog.search_index import IndexHit
from medigan_client.errors import (
    BadRequestError,
    ClientError,
    HubConflictError,
    NotFoundError,
    ReleaseLifecycleWarning,
    ReleaseWithdrawnError,
)
from medigan_client.settings import ClientSettings, HubEntry
from medigan_client.sync import (
    IndexedCatalog,
    Snapshot,
    SyncResult,
    find_release,
    has_snapshot,
    latest_cards,
    latest_releases,
    load_indexed_catalog,
    load_snapshot,
    split_model_ref,
)
from medigan_client.sync import sync as sync_catalog

# The card schema and wire models (pydantic), HTTP (httpx) and the hub's evaluations are
# imported by the methods that use them: a search answered from the index loads none of them.
if TYPE_CHECKING:
    from types import ModuleType

    from medigan_catalog.access import (
        AccountInfo,
        Namespace,
        Organisation,
        TokenCreated,
        TokenInfo,
        VisibilityState,
    )
    from medigan_catalog.schema import Card
    from medigan_catalog.snapshot import SnapshotRelease
    from medigan_client.dataset import GeneratedDataset, StreamingDataset, Transform
    from medigan_client.evaluations import HubEvaluation, RankedRelease, Ranking
    from medigan_client.generate import GenerationResult
    from medigan_client.http import HubSession
    from medigan_client.push import PushResult
    from medigan_client.visualize import Visualiser

OPERATORS = ("AND", "OR", "XOR")
REVIEW_DECISIONS = ("approve", "reject")


def _model_and_version(model_at_version: str) -> tuple[str, str]:
    """``ns/name@version`` split into model id and version; the version is required."""
    model_id, version = split_model_ref(model_at_version)
    if version is None:
        raise BadRequestError(f"{model_at_version!r} names no version; write ns/name@version")
    return model_id, version


def release_path(model_at_version: str) -> str:
    """The hub API path of ``ns/name@version``."""
    from medigan_catalog.snapshot import release_path as wire_release_path

    return wire_release_path(*_model_and_version(model_at_version))


def _dataset_module() -> ModuleType:
    """:mod:`medigan_client.dataset`, or a clear error naming the extra when torch is missing."""
    try:
        from medigan_client import dataset
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise
        raise BadRequestError(
            "torch data sets need torch, which is not installed: "
            "pip install 'medigan-client[torch]'"
        ) from exc
    return dataset


@dataclass(frozen=True)
class ReleaseVersion:
    """One release of a model as the synced catalogue lists it (see :meth:`Client.versions`).

    ``state`` is ``published``, ``deprecated`` or ``yanked`` (the catalogue lists nothing else;
    ``Client.release_status`` asks the hub about any release) and ``notice`` says why a
    deprecated or yanked one is so. ``newest`` marks the release ``ns/name`` resolves to.
    """

    model_id: str
    version: str
    state: str
    published_at: datetime | None
    package_sha256: str | None
    newest: bool
    hub: str = ""
    notice: str | None = None


@dataclass(frozen=True)
class HubRelease:
    """A catalogue entry and the configured hub it was found on (see :meth:`Client.locate`).

    ``attestation_verified`` is True when a key pinned for a configured hub attested the entry,
    None when no pinned key did (no attestation, or an unknown key); ``attested_by`` names the
    hub whose key it was, as that hub names itself.
    """

    hub: str
    hub_url: str
    release: SnapshotRelease
    attestation_verified: bool | None = None
    attested_by: str | None = None

    @property
    def card(self) -> Card:
        """The release's card."""
        return self.release.card

    @property
    def reference(self) -> str:
        """``hub:ns/name@version``: names this very release whatever the hubs' order."""
        return f"{self.hub}:{self.release.model_id}@{self.release.version}"


@dataclass(frozen=True)
class HubSyncReport:
    """The outcome of syncing one hub: its result, or the error that stopped it."""

    hub: str
    hub_url: str
    result: SyncResult | None = None
    error: ClientError | None = None


def split_hub_ref(model: str) -> tuple[str | None, str]:
    """``hub-name:ns/name@version`` as ``(hub name or None, ns/name@version)``."""
    text = model.strip()
    hub, sep, rest = text.rpartition(":")
    if not sep:
        return None, text
    if not hub or not rest:
        raise BadRequestError(f"{model!r} is not a model reference; write [hub:]ns/name[@version]")
    return hub, rest


def _content(release: SnapshotRelease) -> tuple[str, ...]:
    """What identifies a release's content: its artifacts' sha256, as attested or on the card."""
    digests: list[str | None]
    if release.attestation is not None and release.attestation.artifacts:
        digests = list(release.attestation.artifacts.values())
    else:
        digests = [artifact.sha256 for artifact in release.card.artifacts]
    return tuple(sorted(digest.lower() for digest in digests if digest))


class Client:
    """A client of one hub or several, with one cache: sync, search, rank, show, download,
    generate, push.

    ``hubs`` (:class:`~medigan_client.settings.HubEntry`, in priority order) and ``pins``
    (``ns/name`` -> hub name) replace the configured hubs; without them the settings decide
    (``[[hubs]]`` in the config file, else the one hub of ``hub_url``). The commands about one
    hub's accounts and releases (push, status, review, tokens, organisations...) talk to the
    first hub.
    """

    def __init__(
        self,
        hub_url: str | None = None,
        token: str | None = None,
        cache_dir: Path | str | None = None,
        offline: bool | None = None,
        *,
        timeout: float | None = None,
        settings: ClientSettings | None = None,
        progress: bool = True,
        hubs: Sequence[HubEntry] | None = None,
        pins: Mapping[str, str] | None = None,
    ):
        resolved = settings or ClientSettings.load(
            hub_url=hub_url, token=token, cache_dir=cache_dir, offline=offline, timeout=timeout
        )
        if hubs:
            first = hubs[0]
            resolved = replace(resolved.for_hub(first), hubs=tuple(hubs), hub_url_source="argument")
        if pins is not None:
            resolved = replace(resolved, pins=dict(pins))
        self.settings = resolved
        self.progress = progress
        self._session: HubSession | None = None
        self._sessions: dict[str, HubSession] = {}
        # The search index of each hub's cached snapshot, kept while its file is unchanged.
        self._indexed: IndexedCatalog | None = None
        self._indexes: dict[str, IndexedCatalog] = {}

    def __repr__(self) -> str:
        if self.multi_hub:
            names = ", ".join(entry.name for entry in self.hubs)
            return f"Client(hubs=[{names}], offline={self.settings.offline})"
        return f"Client(hub_url={self.settings.hub_url!r}, offline={self.settings.offline})"

    # -- hubs ------------------------------------------------------------------------------

    @property
    def hubs(self) -> tuple[HubEntry, ...]:
        """The configured hubs in priority order (one for a single hub)."""
        return self.settings.hub_entries()

    @property
    def multi_hub(self) -> bool:
        """Whether several hubs are configured."""
        return len(self.settings.hubs) > 1

    def hub_entry(self, name: str) -> HubEntry:
        """The configured hub named ``name`` (or with that URL); ``BadRequestError`` otherwise."""
        for entry in self.hubs:
            if name in (entry.name, entry.url.rstrip("/")):
                return entry
        raise BadRequestError(
            f"no hub named {name!r}; configured hubs: "
            + ", ".join(f"{entry.name} ({entry.url})" for entry in self.hubs)
        )

    def hub_settings(self, name: str | None = None) -> ClientSettings:
        """The settings of one hub (the first without ``name``): its URL, token, keys."""
        if not self.settings.hubs:
            if name is not None:
                self.hub_entry(name)  # an unknown name is an error
            return self.settings
        entry = self.hubs[0] if name is None else self.hub_entry(name)
        return self.settings.for_hub(entry)

    def session_for(self, name: str) -> HubSession:
        """The HTTP session to the hub named ``name``, opened on first use."""
        if not self.settings.hubs or name == self.hubs[0].name:
            return self.session
        found = self._sessions.get(name)
        if found is None:
            from medigan_client.http import HubSession

            found = self._sessions[name] = HubSession(self.hub_settings(name))
        return found

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pools, if any were opened."""
        if self._session is not None:
            self._session.close()
            self._session = None
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    @property
    def session(self) -> HubSession:
        """The HTTP session to the hub, opened on first use."""
        if self._session is None:
            from medigan_client.http import HubSession

            self._session = HubSession(self.settings)
        return self._session

    # -- catalogue -------------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Fetch the hub's catalogue into the cache (304 keeps it; unreachable falls back).

        With several hubs every hub is synced (:meth:`sync_hubs`) and the first hub's result
        that succeeded is returned; when all fail, the first hub's error is raised.
        """
        if not self.settings.hubs:
            return sync_catalog(self.settings, session=self.session)
        reports = self.sync_hubs()
        for report in reports:
            if report.result is not None:
                return report.result
        error = reports[0].error
        assert error is not None
        raise error

    def sync_hubs(self) -> list[HubSyncReport]:
        """Sync every configured hub in priority order, each into its own cache entry, checked
        against its own pinned keys; a hub that fails does not stop the others."""
        reports = []
        for entry in self.hubs:
            settings = self.hub_settings(entry.name)
            try:
                result = sync_catalog(settings, session=self.session_for(entry.name))
            except ClientError as error:
                reports.append(HubSyncReport(entry.name, entry.url, error=error))
            else:
                reports.append(HubSyncReport(entry.name, entry.url, result=result))
        return reports

    def _hub_snapshot(self, name: str | None = None) -> Snapshot:
        settings = self.hub_settings(name)
        if not has_snapshot(settings) and not settings.offline:
            sync_catalog(settings, session=self.session_for(settings.hub_name))
        return load_snapshot(settings)

    def snapshot(self, hub: str | None = None) -> Snapshot:
        """The cached catalogue of a hub (the first without ``hub``), synced once first when
        nothing is cached and online."""
        return self._hub_snapshot(hub)

    def snapshots(self) -> list[tuple[str, Snapshot]]:
        """Every hub's cached catalogue in priority order, as ``(hub name, snapshot)``.

        A hub whose catalogue is neither cached nor can be synced is left out; when that is
        every hub, the first hub's error is raised.
        """
        if not self.settings.hubs:
            return [(self.settings.hub_name, self._hub_snapshot())]
        found: list[tuple[str, Snapshot]] = []
        first_error: ClientError | None = None
        for entry in self.hubs:
            try:
                found.append((entry.name, self._hub_snapshot(entry.name)))
            except ClientError as error:
                first_error = first_error or error
        if not found and first_error is not None:
            raise first_error
        return found

    def newest_releases(self) -> list[HubRelease]:
        """The newest release of every model over all hubs, each from the first hub (priority
        order) that carries the model, unless ``[pins]`` names another."""
        chosen: dict[str, HubRelease] = {}
        urls = {entry.name: entry.url for entry in self.hubs}
        for name, snapshot in self.snapshots():
            for release in latest_releases(snapshot):
                pinned = self.settings.pins.get(release.model_id)
                if release.model_id in chosen and pinned != name:
                    continue
                chosen[release.model_id] = HubRelease(name, urls.get(name, ""), release)
        return list(chosen.values())

    def models(self) -> list[Card]:
        """The newest release of every model in the catalogue, in catalogue order (with several
        hubs, the first hub's models first)."""
        if not self.settings.hubs:
            return latest_cards(self.snapshot())
        return [found.card for found in self.newest_releases()]

    def hub_of(self, card: Card) -> str:
        """The hub a card of :meth:`models` (or a search or ranking) came from."""
        for found in self.newest_releases():
            if found.card.release_id == card.release_id:
                return found.hub
        return self.hubs[0].name

    def indexed_catalog(self, hub: str | None = None) -> IndexedCatalog:
        """A hub's cached catalogue search index (the first hub's without ``hub``), synced once
        first when nothing is cached and online; read again only when the snapshot file changed
        (a sync, another process)."""
        settings = self.hub_settings(hub)
        if not has_snapshot(settings) and not settings.offline:
            sync_catalog(settings, session=self.session_for(settings.hub_name))
        if not self.settings.hubs:
            self._indexed = load_indexed_catalog(settings, previous=self._indexed)
            return self._indexed
        indexed = load_indexed_catalog(settings, previous=self._indexes.get(settings.hub_name))
        self._indexes[settings.hub_name] = indexed
        return indexed

    def search(
        self,
        query: str | Sequence[str] = (),
        *,
        filters: Mapping[str, str] | None = None,
        operator: str = "AND",
        medigan_semantics: bool = False,
    ) -> list[SearchHit]:
        """Search the newest releases offline.

        ``query`` is text or a list of terms; terms written ``key=value`` become filters.
        With ``medigan_semantics`` the terms are matched the way medigan's
        ``find_matching_models_by_values`` does (lower-cased values anywhere in ``selection``,
        combined with ``operator``), and every hit has score 1.0. Answered from the search
        index; only the hits' cards are parsed.
        """
        return [
            SearchHit(catalog.card(hit.entry), hit.score, hit.matched_terms)
            for _, hit, catalog in self._search(query, filters, operator, medigan_semantics)
        ]

    def search_entries(
        self,
        query: str | Sequence[str] = (),
        *,
        filters: Mapping[str, str] | None = None,
        operator: str = "AND",
        medigan_semantics: bool = False,
    ) -> list[IndexHit]:
        """:meth:`search`'s hits without their cards: each names its entry (model id, version,
        title) and catalogue position, so no card is parsed at all."""
        return [hit for _, hit, _ in self._search(query, filters, operator, medigan_semantics)]

    def search_hubs(
        self,
        query: str | Sequence[str] = (),
        *,
        filters: Mapping[str, str] | None = None,
        operator: str = "AND",
        medigan_semantics: bool = False,
    ) -> list[tuple[str, IndexHit]]:
        """:meth:`search_entries` over every hub, each hit with the name of its hub.

        Hits are ordered by score, then by hub priority; a model carried by several hubs (a
        mirror) is listed once per hub.
        """
        return [
            (name, hit)
            for name, hit, _ in self._search(query, filters, operator, medigan_semantics)
        ]

    def _search(
        self,
        query: str | Sequence[str],
        filters: Mapping[str, str] | None,
        operator: str,
        medigan_semantics: bool,
    ) -> list[tuple[str, IndexHit, IndexedCatalog]]:
        operator = operator.upper()
        if operator not in OPERATORS:
            raise BadRequestError(f"operator must be one of {', '.join(OPERATORS)}, not {operator}")
        tokens = split_query(query) if isinstance(query, str) else [str(t) for t in query]
        terms, parsed_filters = parse_filter_terms(tokens)
        all_filters = {**parsed_filters, **dict(filters or {})}
        values: list[str] = []
        if medigan_semantics:
            values = [term.strip('"').lower() for term in terms]
            values += [value.lower() for value in all_filters.values()]
            if not values:
                raise BadRequestError("medigan semantics need at least one value to match")
        found: list[tuple[str, IndexHit, IndexedCatalog]] = []
        catalogs = self._indexed_catalogs()
        for name, catalog in catalogs:
            index = catalog.index
            if medigan_semantics:
                matched = tuple(values)
                positions = index.medigan_find_matching(values, operator)
                hits = [IndexHit(p, index.entry(p), 1.0, matched) for p in positions]
            else:
                hits = index.search(" ".join(terms), filters=all_filters or None, operator=operator)
            found.extend((name, hit, catalog) for hit in hits)
        if len(catalogs) > 1:
            # Stable: equal scores keep the hubs' priority order and each hub's own order.
            found.sort(key=lambda item: -item[1].score)
        return found

    def _indexed_catalogs(self) -> list[tuple[str, IndexedCatalog]]:
        """Each hub's search index whose catalogue is cached or can be synced now; when none
        is, the first hub's error is raised."""
        if not self.settings.hubs:
            return [(self.settings.hub_name, self.indexed_catalog())]
        found: list[tuple[str, IndexedCatalog]] = []
        first_error: ClientError | None = None
        for entry in self.hubs:
            try:
                found.append((entry.name, self.indexed_catalog(entry.name)))
            except ClientError as error:
                first_error = first_error or error
        if not found and first_error is not None:
            raise first_error
        return found

    def rank(self, metric: str, *, descending: bool = False) -> list[Card]:
        """The newest releases ordered by ``metric`` (dotted path under selection.performance).

        Releases without a value for the metric come last, in catalogue order.
        """
        return list(rank(self.models(), metric, descending=descending))

    def rank_by_hub_metric(
        self,
        metric: str,
        *,
        reference: str,
        extractor: str | None = None,
        descending: bool | None = None,
    ) -> list[RankedRelease]:
        """The newest releases ordered by a hub-computed metric against a reference set.

        ``metric`` is ``fid`` (FID_rs), ``fid_rr``, ``r_fid``, ``kid``, ``precision`` or
        ``recall``; offline, from the synced snapshot. Releases the hub has not evaluated against
        ``reference`` come last.
        """
        from medigan_client.evaluations import rank_by_hub_metric

        releases = [(release.card, release.evaluations) for release in self._newest_entries()]
        return rank_by_hub_metric(
            releases, metric, reference=reference, extractor=extractor, descending=descending
        )

    def ranking(
        self,
        metric: str,
        *,
        reference: str | None = None,
        extractor: str | None = None,
        descending: bool | None = None,
    ) -> Ranking:
        """The newest releases ranked by ``metric``, with the caveats a reader needs.

        Without ``reference`` the values are the cards' self-reported ones (``metric`` is a
        dotted path under ``selection.performance``, ascending unless ``descending``); with it,
        the hub's evaluations against that reference set (see :meth:`rank_by_hub_metric`), and
        a reference set no release was evaluated against raises ``NotFoundError`` naming the
        known ones. Offline, from the synced snapshot. See
        :class:`medigan_client.evaluations.Ranking`.
        """
        from medigan_client.evaluations import known_references, rank_hub_metric, rank_self_reported

        releases = [(release.card, release.evaluations) for release in self._newest_entries()]
        if reference is None:
            return rank_self_reported(
                [card for card, _ in releases],
                metric,
                descending=bool(descending),
                known_references=known_references(releases),
            )
        return rank_hub_metric(
            releases, metric, reference=reference, extractor=extractor, descending=descending
        )

    def _newest_entries(self) -> list[SnapshotRelease]:
        if not self.settings.hubs:
            return latest_releases(self.snapshot())
        return [found.release for found in self.newest_releases()]

    def versions(self, model: str) -> list[ReleaseVersion]:
        """Every release of ``[hub:]ns/name`` in the synced catalogue, newest version first.

        With several hubs the releases are those of the hub ``ns/name`` resolves to
        (:meth:`locate`). Raises ``NotFoundError`` (naming close matches) for a model the
        catalogue does not list.
        """
        from medigan_catalog.snapshot import newest_selectable, version_key

        model_id, version = split_model_ref(split_hub_ref(model)[1])
        if version is not None:
            raise BadRequestError(f"{model!r} names a version; write {model_id}")
        try:
            found = self.locate(model)  # NotFoundError with close matches for an unknown model
            hub_name = found.hub
        except NotFoundError:
            # A model whose releases are all yanked resolves to none, yet has versions to list.
            hub_name = self.hubs[0].name
            if not any(r.model_id == model_id for r in self.snapshot().releases):
                raise
        snapshot = self.snapshot(hub_name if self.settings.hubs else None)
        releases = [r for r in snapshot.releases if r.card.model_id == model_id]
        latest = newest_selectable(releases)
        listed = []
        for release in sorted(releases, key=lambda r: version_key(r.version), reverse=True):
            artifact = release.card.package_artifact
            listed.append(
                ReleaseVersion(
                    model_id=model_id,
                    version=release.version,
                    state=release.state.value,
                    published_at=release.published_at,
                    package_sha256=artifact.sha256 if artifact is not None else None,
                    newest=release is latest,
                    hub=hub_name,
                    notice=release.notice.describe(release.state.value)
                    if release.notice is not None
                    else None,
                )
            )
        return listed

    def evaluations(self, model: str) -> tuple[HubEvaluation, ...]:
        """The hub's evaluations of ``[hub:]ns/name`` (newest release) or ``ns/name@version``."""
        return self.locate(model).release.evaluations

    def medigan_rank(self, metric: str, order: str = "asc") -> list[Card]:
        """Rank like medigan's ``rank_models_by_performance`` (``order`` asc or desc)."""
        return list(medigan_rank(self.models(), metric, order))

    def show(self, model: str) -> Card:
        """The card of ``[hub:]ns/name`` (newest release) or ``[hub:]ns/name@version``.

        A medigan-style id (``00102_NAME``, ``102``, maybe ``@version``) names the model of any
        namespace it matches (:mod:`medigan_client.model_refs`). With several hubs see
        :meth:`locate`.
        """
        return self.locate(model).card

    def locate(self, model: str) -> HubRelease:
        """The release ``[hub:]ns/name[@version]`` names, and the hub it is taken from.

        With a ``hub:`` prefix, that hub's catalogue only. Otherwise the first hub in priority
        order that carries the model, or the hub ``[pins]`` names for it. When another hub
        carries the same model and version with other content (their artifacts' sha256
        differ), :class:`~medigan_client.errors.HubConflictError` names both hubs and how to
        pin, unless the model is pinned; the same content on several hubs (a mirror) is no
        conflict. An entry whose attestation, by a key pinned for a configured hub, does not
        hold raises :class:`~medigan_client.errors.AttestationInvalidError`.
        """
        hub, ref = split_hub_ref(model)
        if hub is not None:
            entry = self.hub_entry(hub)
            snapshot = self.snapshot(entry.name)
            return self._checked(entry, snapshot, find_release(snapshot, ref))
        if not self.settings.hubs:
            snapshot = self.snapshot()
            return self._checked(self.hubs[0], snapshot, find_release(snapshot, ref))
        found: list[tuple[HubEntry, Snapshot, Card]] = []
        first_error: NotFoundError | None = None
        snapshots = dict(self.snapshots())
        for entry in self.hubs:
            cached = snapshots.get(entry.name)
            if cached is None:
                continue
            try:
                found.append((entry, cached, find_release(cached, ref)))
            except NotFoundError as error:
                first_error = first_error or error
        if not found:
            if first_error is not None:
                raise first_error
            raise NotFoundError(f"no hub's catalogue lists {ref}")
        model_id = found[0][2].model_id
        pinned = self.settings.pins.get(model_id)
        if pinned is not None:
            for entry, snapshot, card in found:
                if entry.name == pinned:
                    return self._checked(entry, snapshot, card)
            raise NotFoundError(
                f"{model_id} is pinned to hub {pinned}, whose catalogue does not list {ref}"
            )
        entry, first, card = found[0]
        chosen = self._entry_of(first, card)
        for other, snapshot, _ in found[1:]:
            same = [
                release
                for release in snapshot.releases
                if release.model_id == model_id and release.version == card.version
            ]
            if same and _content(same[0]) != _content(chosen):
                raise HubConflictError(
                    f"{model_id}@{card.version} is carried by hub {entry.name} and by hub "
                    f"{other.name} with different content (their artifacts' sha256 differ); "
                    "the client does not choose between them. Pin it in the config "
                    f'([pins] "{model_id}" = "{entry.name}") or name the hub: '
                    f"{entry.name}:{model_id}@{card.version}",
                    detail={
                        "model_id": model_id,
                        "version": card.version,
                        "hubs": [entry.name, other.name],
                    },
                )
        return self._checked(entry, first, card)

    @staticmethod
    def _entry_of(snapshot: Snapshot, card: Card) -> SnapshotRelease:
        for release in snapshot.releases:
            if release.card.release_id == card.release_id:
                return release
        raise NotFoundError(f"no entry {card.release_id} in the catalogue of {snapshot.hub_url}")

    def _checked(self, entry: HubEntry, snapshot: Snapshot, card: Card) -> HubRelease:
        """The entry of ``card`` in hub ``entry``'s ``snapshot``, its attestation checked where
        a pinned key of a configured hub made it."""
        release = self._entry_of(snapshot, card)
        if release.attestation is None:
            return HubRelease(entry.name, entry.url, release)
        from medigan_client.trust import require_valid_attestation, trusted_keys_by_hub

        keys = trusted_keys_by_hub([self.hub_settings(e.name) for e in self.hubs])
        check = require_valid_attestation(release, keys, hub=entry.name)
        return HubRelease(entry.name, entry.url, release, check.verified, check.key_hub)

    # -- artifacts and generation ----------------------------------------------------------

    def _resolved(self, model: str) -> tuple[HubRelease, ClientSettings, HubSession]:
        """The release ``model`` names for a use of it (download, generation), its hub's
        settings and session.

        A deprecated or yanked release is used with a :class:`ReleaseLifecycleWarning` that
        gives the reason and names the replacement. A release the catalogue no longer lists
        because its hub withdrew it raises :class:`ReleaseWithdrawnError` with the hub's reason
        (asked of the hub when online; offline it is not found).
        """
        try:
            found = self.locate(model)
        except NotFoundError:
            self._raise_if_withdrawn(model)
            raise
        if found.release.warning is not None:
            warnings.warn(found.release.warning, ReleaseLifecycleWarning, stacklevel=3)
        name = found.hub if self.settings.hubs else None
        settings = self.hub_settings(name)
        return found, settings, self.session_for(settings.hub_name)

    def _raise_if_withdrawn(self, model: str) -> None:
        """Ask the hub about an exact release the catalogue does not list: the hub answers
        ``release_withdrawn`` (raised as :class:`ReleaseWithdrawnError`) for one it withdrew."""
        hub, ref = split_hub_ref(model)
        model_id, version = split_model_ref(ref)
        settings = self.hub_settings(hub if self.settings.hubs else None)
        if version is None or settings.offline:
            return
        from medigan_catalog.snapshot import release_path

        try:
            status = self.session_for(settings.hub_name).get_json(release_path(model_id, version))
        except ReleaseWithdrawnError:
            raise
        except ClientError:
            return  # not known to the hub, or not reachable: the NotFoundError stands
        # Who may see withdrawn releases (the hub's administrators) gets their status instead.
        if isinstance(status, dict) and status.get("state") == "withdrawn":
            events = [e for e in status.get("events") or [] if isinstance(e, dict)]
            reason = next(
                (e.get("note") for e in reversed(events) if e.get("to_state") == "withdrawn"),
                None,
            )
            release = f"{model_id}@{version}"
            raise ReleaseWithdrawnError(
                f"{release} was withdrawn by the hub: {reason or 'no reason given'}",
                detail={"release": release, "reason": reason or "no reason given"},
            )

    def download(self, model: str) -> Path:
        """Download (once, verified) the package zip of a release; return its cached path."""
        from medigan_client.download import download_release

        found, settings, session = self._resolved(model)
        return download_release(settings, found.card, session=session, progress=self.progress)

    def package(self, model: str) -> Path:
        """Download and extract (once) the package of a release; return its directory."""
        from medigan_client.download import ensure_package

        found, settings, session = self._resolved(model)
        return ensure_package(settings, found.card, session=session, progress=self.progress)

    def generate(
        self,
        model: str,
        num_samples: int,
        output_dir: Path | str,
        *,
        seed: int = 0,
        batch_size: int | None = None,
        device: str = "auto",
        args: Mapping[str, object] | None = None,
        progress: bool | None = None,
        format: str = "png",
        start_index: int = 0,
        resume: bool = False,
        isolation: str = "auto",
        half: bool = False,
        workers: int | None = None,
        max_in_flight: int | None = None,
        dicom_uid_root: str | None = None,
        overwrite: bool = False,
    ) -> GenerationResult:
        """Generate samples ``[start_index, start_index + num_samples)`` into ``output_dir``.

        ``format`` is png, npy, nifti or dicom (the last two need ``medigan-client[formats]``);
        ``output_dir`` must be missing or empty unless ``resume`` continues an interrupted run
        from the folder's manifest or ``overwrite`` replaces the run the manifest lists (only its
        files; a folder holding anything else raises ``OutputExistsError``); ``isolation`` picks
        the runtime; ``half`` asks for float16 where the card allows it; ``workers`` is the
        number of writer threads. See :func:`medigan_client.generate.generate`.
        """
        from medigan_client.generate import GenerationOptions, generate

        options = GenerationOptions(
            seed=seed,
            batch_size=batch_size,
            device=device,
            args=dict(args or {}),
            progress=self.progress if progress is None else progress,
            format=format,
            start_index=start_index,
            resume=resume,
            isolation=isolation,
            half=half,
            workers=workers,
            max_in_flight=max_in_flight,
            dicom_uid_root=dicom_uid_root,
            overwrite=overwrite,
        )
        found, settings, session = self._resolved(model)
        return generate(
            settings,
            found.card.release_id,
            num_samples,
            Path(output_dir),
            options,
            session=session,
        )

    # -- torch data sets and the visualiser ------------------------------------------------

    def dataset(
        self,
        model: str,
        num_samples: int,
        *,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        seed: int = 0,
        args: Mapping[str, object] | None = None,
        device: str = "auto",
        isolation: str = "auto",
        batch_size: int | None = None,
    ) -> GeneratedDataset:
        """A map-style torch data set of ``num_samples`` samples, generated once and cached.

        Asking again with the same release, seed, count, batch size and arguments reads the
        cached arrays instead of generating; items are dicts with ``image`` (float32, [0, 1],
        channels first), ``mask`` and ``label`` when the package returns them, and ``index``.
        ``isolation`` is how the package runs while the data set is built (reading it runs
        nothing). See :mod:`medigan_client.dataset` and docs/datasets.md.
        """
        from medigan_client.batching import default_batch_size
        from medigan_client.generate import resolve_arguments

        module = _dataset_module()
        found, settings, session = self._resolved(model)
        card = found.card
        spec = module.DatasetSpec(
            card=card,
            num_samples=num_samples,
            seed=seed,
            batch_size=batch_size if batch_size is not None else default_batch_size(card),
            arguments=resolve_arguments(card, args),
        )
        dataset: GeneratedDataset = module.open_dataset(
            settings,
            spec,
            transform=transform,
            target_transform=target_transform,
            device=device,
            isolation=isolation,
            session=session,
            progress=self.progress,
        )
        return dataset

    def iterable_dataset(
        self,
        model: str,
        *,
        batch_size: int | None = None,
        seed: int = 0,
        args: Mapping[str, object] | None = None,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        device: str = "cpu",
        isolation: str = "inprocess",
        num_samples: int | None = None,
    ) -> StreamingDataset:
        """A torch ``IterableDataset`` of fresh samples, endless or ``num_samples`` long.

        Each DataLoader worker opens its own runner and draws its own seeds; the package is
        downloaded here, once, so workers never download. Defaults suit DataLoader workers
        (``inprocess``, ``cpu``); see :class:`medigan_client.dataset.StreamingDataset`.
        """
        from medigan_client.batching import default_batch_size
        from medigan_client.download import ensure_package
        from medigan_client.generate import resolve_arguments

        module = _dataset_module()
        found, settings, session = self._resolved(model)
        card = found.card
        arguments = resolve_arguments(card, args)
        package_dir = ensure_package(settings, card, session=session, progress=self.progress)
        stream: StreamingDataset = module.StreamingDataset(
            settings,
            card,
            package_dir,
            arguments=arguments,
            seed=seed,
            batch_size=batch_size if batch_size is not None else default_batch_size(card),
            num_samples=num_samples,
            transform=transform,
            target_transform=target_transform,
            device=device,
            isolation=isolation,
        )
        return stream

    def visualize(
        self,
        model: str,
        *,
        args: Mapping[str, object] | None = None,
        seed: int = 0,
        device: str = "cpu",
        isolation: str = "auto",
        show: bool = True,
    ) -> Visualiser:
        """An interactive matplotlib viewer of one release; needs ``medigan-client[visualize]``.

        Returns the :class:`medigan_client.visualize.Visualiser` (figure and widgets); with
        ``show=False`` ``pyplot.show()`` is not called. See docs/visualiser.md.
        """
        from medigan_client.visualize import visualize

        found, settings, session = self._resolved(model)
        return visualize(
            settings,
            found.card.release_id,
            args=args,
            seed=seed,
            device=device,
            isolation=isolation,
            show=show,
            session=session,
            progress=self.progress,
        )

    # -- contributing and reviewing --------------------------------------------------------

    def push(
        self,
        package_dir: Path | str,
        *,
        visibility: str | None = None,
        mint_doi: bool = False,
        doi: str | None = None,
    ) -> PushResult:
        """Check, zip and upload a package directory; return the hub's answer.

        ``visibility`` (``public``, ``internal`` or ``private``) is who may see the model when
        this push creates it; the hub's default applies when it is ``None``, and a model that
        exists keeps its own (change it with :meth:`set_visibility`). ``mint_doi`` asks the hub
        to deposit the package on Zenodo once it is approved and pin the DOI it gets; ``doi``
        names the Zenodo record that already holds the package, which the hub checks and pins.
        """
        from medigan_client.push import push

        return push(
            self.settings,
            Path(package_dir),
            session=self.session,
            visibility=visibility,
            mint_doi=mint_doi,
            doi=doi,
        )

    def release_status(self, model_at_version: str) -> dict[str, Any]:
        """The hub's status of a release: state, checks, events, DOI."""
        status = self.session.get_json(release_path(model_at_version))
        if not isinstance(status, dict):
            raise BadRequestError(f"the hub's status of {model_at_version} is not an object")
        return status

    def wait_for_checks(
        self, model_at_version: str, *, timeout: float = 600.0, poll_seconds: float = 1.0
    ) -> dict[str, Any]:
        """Wait until the hub has validated a pushed release; return its status.

        Returns once the release left ``submitted`` and ``validating`` (usually ``in_review``).
        Raises :class:`ValidationFailedError` naming the failed checks when the hub rejected it,
        and :class:`HubBusyError` when validation has not finished within ``timeout`` seconds.
        """
        import time

        from medigan_client.errors import HubBusyError, ValidationFailedError

        deadline = time.monotonic() + timeout
        while True:
            status = self.release_status(model_at_version)
            state = status.get("state")
            if state == "rejected":
                failed = [
                    f"{check.get('name')}: {check.get('message')}"
                    for check in status.get("checks") or []
                    if isinstance(check, dict) and check.get("status") == "failed"
                ]
                raise ValidationFailedError(
                    f"{model_at_version} was rejected by the hub's checks"
                    + ("".join(f"\n  {line}" for line in failed) if failed else ""),
                    detail=status,
                )
            if state not in ("submitted", "validating"):
                return status
            if time.monotonic() >= deadline:
                raise HubBusyError(
                    f"{model_at_version} is still {state} after {timeout:g} s; "
                    f"see `medigan-client status {model_at_version}` later",
                    detail=status,
                )
            time.sleep(poll_seconds)

    def review(self, model_at_version: str, decision: str, note: str = "") -> dict[str, Any]:
        """Approve or reject a release in review (reviewers only); return its new status."""
        from medigan_catalog.snapshot import review_path as wire_review_path

        if decision not in REVIEW_DECISIONS:
            raise BadRequestError(f"decision must be approve or reject, not {decision!r}")
        status = self.session.post_json(
            wire_review_path(*_model_and_version(model_at_version)),
            {"decision": decision, "note": note},
        )
        if not isinstance(status, dict):
            raise BadRequestError(f"the hub's status of {model_at_version} is not an object")
        return status

    def deprecate(
        self, model_at_version: str, reason: str, replacement: str | None = None
    ) -> dict[str, Any]:
        """Deprecate a published release (the model's maintainers), with a reason and maybe the
        model to use instead; return its new status."""
        return self._lifecycle(
            model_at_version, "deprecate", {"reason": reason, "replacement": replacement or ""}
        )

    def yank(self, model_at_version: str, reason: str) -> dict[str, Any]:
        """Yank a release (PEP 592; the model's maintainers): it stays downloadable by exact
        version and is never chosen for ``ns/name``; return its new status."""
        return self._lifecycle(model_at_version, "yank", {"reason": reason})

    def withdraw(self, model_at_version: str, reason: str) -> dict[str, Any]:
        """Withdraw a release: your own before publication, any after it with an administrator's
        admin-scope token; return its new status."""
        return self._lifecycle(model_at_version, "withdraw", {"reason": reason})

    def _lifecycle(
        self, model_at_version: str, action: str, payload: dict[str, str]
    ) -> dict[str, Any]:
        from medigan_catalog.snapshot import lifecycle_path

        if not payload["reason"].strip():
            raise BadRequestError(f"say why: {action} needs a reason")
        status = self.session.post_json(
            lifecycle_path(*_model_and_version(model_at_version), action), payload
        )
        if not isinstance(status, dict):
            raise BadRequestError(f"the hub's status of {model_at_version} is not an object")
        return status

    # -- identity and access ---------------------------------------------------------------

    def whoami(self) -> AccountInfo:
        """The account of this client's token: user, namespaces, organisations, token scopes."""
        from medigan_client.access import whoami

        return whoami(self.session)

    def create_token(
        self,
        name: str,
        *,
        scopes: Sequence[str] | None = None,
        namespace: str | None = None,
        days: int | None = None,
    ) -> TokenCreated:
        """A new token of this client's user; its ``key`` is in the answer this once only.

        ``scopes`` default to ``read`` and ``push``, ``days`` to 90; the new token can be no
        wider than this client's (its scopes a subset, its namespace no wider, its expiry no
        later). ``namespace`` restricts it to one namespace.
        """
        from medigan_client.access import create_token, token_request

        request = token_request(name, scopes=scopes, namespace=namespace, days=days)
        return create_token(self.session, request)

    def tokens(self) -> tuple[TokenInfo, ...]:
        """This client's user's tokens, newest first, revoked ones included (never their keys)."""
        from medigan_client.access import list_tokens

        return list_tokens(self.session)

    def revoke_token(self, token_id: int) -> None:
        """Revoke one of this user's tokens by its id (see :meth:`tokens`)."""
        from medigan_client.access import revoke_token

        revoke_token(self.session, token_id)

    def create_organisation(self, name: str, title: str = "") -> Organisation:
        """A new organisation (and its namespace ``name``) owned by this user; needs ``admin``."""
        from medigan_client.access import create_organisation

        return create_organisation(self.session, name, title)

    def organisations(self) -> tuple[Organisation, ...]:
        """The organisations this user belongs to, with their role in each."""
        from medigan_client.access import list_organisations

        return list_organisations(self.session)

    def organisation(self, name: str) -> Organisation:
        """One organisation of this user's, with its members."""
        from medigan_client.access import get_organisation

        return get_organisation(self.session, name)

    def add_member(self, org: str, username: str, role: str = "reader") -> Organisation:
        """Add ``username`` to ``org`` with ``role`` (or change their role); owners only."""
        from medigan_client.access import add_member

        return add_member(self.session, org, username, role)

    def remove_member(self, org: str, username: str) -> Organisation:
        """Remove ``username`` from ``org``; owners only."""
        from medigan_client.access import remove_member

        return remove_member(self.session, org, username)

    def create_namespace(self, name: str) -> Namespace:
        """A namespace of this user's own to push into."""
        from medigan_client.access import create_namespace

        return create_namespace(self.session, name)

    def namespaces(self) -> tuple[Namespace, ...]:
        """The namespaces this user may push into."""
        from medigan_client.access import list_namespaces

        return list_namespaces(self.session)

    def visibility(self, model: str) -> VisibilityState:
        """Who may see ``ns/name`` (public, internal, private) and any change that waits."""
        from medigan_client.access import get_visibility

        return get_visibility(self.session, model)

    def set_visibility(self, model: str, visibility: str, note: str = "") -> VisibilityState:
        """Change who may see ``ns/name``; ``requested`` in the answer is set when the change
        waits for a hub reviewer (making a model public does)."""
        from medigan_client.access import set_visibility

        return set_visibility(self.session, model, visibility, note)

    def review_visibility(self, model: str, decision: str, note: str = "") -> VisibilityState:
        """Approve or reject the visibility change that waits on ``ns/name`` (hub reviewers)."""
        from medigan_client.access import review_visibility

        if decision not in REVIEW_DECISIONS:
            raise BadRequestError(f"decision must be approve or reject, not {decision!r}")
        return review_visibility(self.session, model, decision, note)
