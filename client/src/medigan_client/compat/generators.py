"""``Generators``: medigan 1.0.0's public API on top of a hub's synced catalogue.

``from medigan_client import Generators`` replaces ``from medigan import Generators``: every
public method of medigan's class is here with the same name, parameters, defaults and return
shapes, minus medigan's known bugs. The catalogue is the hub's (synced into the client's cache,
searched offline) instead of a ``config/global.json`` in the working directory; packages come
from the client's verified cache instead of ``models/`` there. ``docs/medigan-compat.md`` lists
what maps to what and every difference.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medigan_catalog.errors import CatalogError
from medigan_catalog.medigan_compat import (
    MEDIGAN_BASE_ARGUMENTS,
    card_from_medigan_entry,
    card_to_medigan_entry,
)
from medigan_catalog.packaging import safe_extract
from medigan_client.api import Client
from medigan_client.compat.catalogue import CatalogueModel, MediganCatalogue, config_at
from medigan_client.compat.contributor import (
    ModelContributor,
    local_package_dir,
    push_contribution,
)
from medigan_client.compat.dataset import SyntheticDataset, torch_dataloader, torch_dataset
from medigan_client.compat.errors import ModelNotFoundError
from medigan_client.compat.executor import ExecutionOptions, ModelExecutor
from medigan_client.compat.importer import hub_namespace
from medigan_client.compat.selection import ModelMatchCandidate, ModelSelector
from medigan_client.errors import (
    BadRequestError,
    GenerationFailedError,
    NotFoundError,
    PermissionDeniedError,
)
from medigan_client.runtime import ISOLATION_MODES
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from medigan_catalog.schema import Card
    from medigan_client.visualize import Visualiser

logger = logging.getLogger(__name__)

MODEL_ID_KEY = "model_id"
# Local models added with add_model_to_config get cards in this namespace.
LOCAL_NAMESPACE = "local"
_EXECUTION_KEYS = (
    "package_link",
    "extension",
    "package_name",
    "model_name",
    "dependencies",
    "generate_method",
)


class Generators:
    """medigan's ``Generators`` backed by a hub: search, rank, generate, datasets, contribute.

    medigan's constructor arguments are accepted: ``config_manager`` and ``model_selector``
    are used when they are this module's :class:`MediganCatalogue` / :class:`ModelSelector` and
    ignored otherwise (the hub's catalogue is the config); ``model_executors``,
    ``model_contributors`` and ``initialize_all_models`` mean what they meant (the last one
    downloads every package). Keyword-only options choose the hub and how packages run:
    ``client`` (a ready :class:`Client`) or ``settings``/``hub_url``/``token``/``cache_dir``/
    ``offline``; ``isolation`` (``auto``, ``inprocess``, ``process``, ``venv``), ``device``,
    ``seed`` (``None``: fresh samples on every call, as medigan), ``progress`` bars, and
    ``refresh`` (sync the catalogue now rather than using the cached one).
    """

    def __init__(
        self,
        config_manager: object | None = None,
        model_selector: object | None = None,
        model_executors: list[ModelExecutor] | None = None,
        model_contributors: list[ModelContributor] | None = None,
        initialize_all_models: bool = False,
        *,
        client: Client | None = None,
        settings: ClientSettings | None = None,
        hub_url: str | None = None,
        token: str | None = None,
        cache_dir: Path | str | None = None,
        offline: bool | None = None,
        isolation: str = "auto",
        device: str = "auto",
        seed: int | None = None,
        progress: bool = True,
        refresh: bool = False,
    ):
        if isolation not in ISOLATION_MODES:
            raise BadRequestError(
                f"isolation must be one of {', '.join(ISOLATION_MODES)}, not {isolation!r}"
            )
        # A client given by the caller stays the caller's to close.
        self._owns_client = client is None
        # Folders that zipped local packages were extracted into, removed by close().
        self._scratch_dirs: list[Path] = []
        self.client = client or Client(
            hub_url=hub_url,
            token=token,
            cache_dir=cache_dir,
            offline=offline,
            settings=settings,
            progress=progress,
        )
        self.options = ExecutionOptions(
            settings=self.client.settings,
            isolation=isolation,
            device=device,
            seed=seed,
            progress=progress,
        )
        self._catalogue: MediganCatalogue | None = None
        self._selector: ModelSelector | None = None
        if isinstance(config_manager, MediganCatalogue):
            self._catalogue = config_manager
        elif config_manager is not None:
            logger.warning("config_manager is ignored: the hub's catalogue is the config")
        if isinstance(model_selector, ModelSelector):
            self._selector = model_selector
            self._catalogue = self._catalogue or model_selector.config_manager
        elif model_selector is not None:
            logger.warning("model_selector is ignored: models are selected in the hub catalogue")
        self.model_executors: list[ModelExecutor] = list(model_executors or [])
        self.model_contributors: list[ModelContributor] = list(model_contributors or [])
        if refresh:
            self.client.sync()
        if initialize_all_models:
            self.add_all_model_executors()

    # -- the catalogue ---------------------------------------------------------------------

    @property
    def config_manager(self) -> MediganCatalogue:
        """The catalogue as medigan's config (synced once when nothing is cached yet)."""
        if self._catalogue is None:
            self._catalogue = MediganCatalogue(self.client.models())
        return self._catalogue

    @property
    def model_selector(self) -> ModelSelector:
        """medigan's model selector over :attr:`config_manager`."""
        if self._selector is None or self._selector.config_manager is not self.config_manager:
            self._selector = ModelSelector(self.config_manager)
        return self._selector

    def _resolve(self, model_id: object) -> CatalogueModel:
        """The model ``model_id`` names: medigan id, short id or ``ns/name``, maybe ``@version``."""
        if isinstance(model_id, str) and "@" in model_id:
            base, _, version = model_id.strip().partition("@")
            model = self.config_manager.model(self.config_manager.match_model_id(base))
            if model.local_package_dir is not None:
                raise ModelNotFoundError(f"{base} is a local model; it has no hub releases")
            try:
                card = self.client.show(f"{model.card.model_id}@{version}")
            except NotFoundError as exc:
                raise ModelNotFoundError(exc.message, detail=exc.detail) from exc
            return CatalogueModel(f"{model.model_id}@{version}", card)
        return self.config_manager.model(self.config_manager.match_model_id(model_id))

    def _match(self, model_id: object) -> str:
        return self._resolve(model_id).model_id

    def _matched_ids(self, model_ids: Sequence[object] | None) -> list[str] | None:
        if model_ids is None:
            return None
        if isinstance(model_ids, str | int):
            raise BadRequestError(f"model_ids must be a list of ids, not {model_ids!r}")
        return [self.config_manager.match_model_id(model_id) for model_id in model_ids]

    # -- config manager methods ------------------------------------------------------------

    def get_config_by_id(self, model_id: str | int, config_key: str | None = None) -> Any:
        """The model's ``global.json`` entry, or the part below a dotted ``config_key``."""
        model = self._resolve(model_id)
        return config_at(self._entry(model), config_key, model.model_id)

    def _entry(self, model: CatalogueModel) -> dict[str, Any]:
        """The ``global.json`` entry of a model of the view (or of one pinned release of it)."""
        if self.config_manager.is_model_in_config(model.model_id):
            return self.config_manager.entry(model.model_id)
        return card_to_medigan_entry(model.card)

    def is_model_metadata_valid(
        self, model_id: str, metadata: dict[str, Any], is_local_model: bool = True
    ) -> bool:
        """Whether ``metadata`` (``{model_id: entry}``) holds what running the model needs.

        medigan's checks (execution and selection blocks, execution's keys, a package name, the
        four base arguments, a local folder or zip for a local model, a URL otherwise), and the
        entry must import as a card (image size included).
        """
        try:
            self._check_metadata(model_id, metadata, is_local_model)
        except (BadRequestError, NotFoundError, CatalogError) as exc:
            logger.info("metadata of %s is not valid: %s", model_id, exc)
            return False
        return True

    def _check_metadata(self, model_id: str, metadata: object, is_local_model: bool) -> None:
        entry = metadata.get(model_id) if isinstance(metadata, dict) else None
        if not isinstance(entry, dict):
            raise BadRequestError(f"the metadata holds no entry keyed by {model_id!r}")
        execution = entry.get("execution")
        if not isinstance(execution, dict) or not isinstance(entry.get("selection"), dict):
            raise BadRequestError("the entry needs an execution and a selection block")
        missing = [key for key in _EXECUTION_KEYS if key not in execution]
        if missing:
            raise BadRequestError(f"execution lacks {', '.join(missing)}")
        if not execution.get("package_name"):
            raise BadRequestError("execution.package_name is empty")
        method = execution.get("generate_method")
        args = method.get("args") if isinstance(method, dict) else None
        base = args.get("base") if isinstance(args, dict) else None
        if not isinstance(base, list) or not set(MEDIGAN_BASE_ARGUMENTS) <= set(base):
            raise BadRequestError(
                f"execution.generate_method.args.base must list {', '.join(MEDIGAN_BASE_ARGUMENTS)}"
            )
        link = str(execution.get("package_link") or "")
        if is_local_model:
            if not Path(link).expanduser().exists():
                raise NotFoundError(f"the package_link {link!r} is no local folder or zip")
        elif "://" not in link:
            raise BadRequestError(f"the package_link {link!r} is not a URL")
        card_from_medigan_entry(model_id, entry, namespace=LOCAL_NAMESPACE)

    def add_model_to_config(
        self,
        model_id: str,
        metadata: dict[str, Any],
        is_local_model: bool | None = None,
        overwrite_existing_metadata: bool = False,
        store_new_config: bool = True,
    ) -> bool:
        """Make a local model (its package in a local folder or zip) usable like the hub's.

        The model lives in this ``Generators`` only: ``store_new_config`` writes nothing (the
        hub's catalogue is not edited locally; share a model with :meth:`contribute`). Models
        whose package is only at a URL cannot be added; publish them on a hub.
        """
        if is_local_model is None:
            # medigan guessed from whether a contributor existed; the package link says it.
            entry = metadata.get(model_id) if isinstance(metadata, dict) else None
            execution = entry.get("execution") if isinstance(entry, dict) else None
            link = execution.get("package_link") if isinstance(execution, dict) else None
            is_local_model = "://" not in str(link or "")
        if not is_local_model:
            logger.warning(
                "%s: a model with a remote package is added to the catalogue by publishing it "
                "on the hub (contribute()); nothing was added",
                model_id,
            )
            return False
        if not self.is_model_metadata_valid(model_id, metadata, is_local_model=True):
            return False
        if self.config_manager.is_model_in_config(model_id) and not overwrite_existing_metadata:
            logger.warning(
                "%s is already in the config and overwrite_existing_metadata is False; "
                "nothing was added",
                model_id,
            )
            return False
        entry = metadata[model_id]
        card, _ = card_from_medigan_entry(model_id, entry, namespace=LOCAL_NAMESPACE)
        package_dir = local_package_dir(entry)
        if package_dir is None:
            package_dir = Path(tempfile.mkdtemp(prefix=f"medigan-local-{model_id}-"))
            self._scratch_dirs.append(package_dir)
            safe_extract(Path(entry["execution"]["package_link"]).expanduser(), package_dir)
        self.config_manager.add_local(model_id, card, package_dir.resolve(), entry)
        self.model_executors = [e for e in self.model_executors if e.model_id != model_id]
        if store_new_config:
            logger.info("%s was added in this process only; no config file is written", model_id)
        return True

    # -- model selector methods ------------------------------------------------------------

    def list_models(self) -> list[str]:
        """The ids of every model, in catalogue order."""
        return self.config_manager.model_ids

    def get_selection_criteria_by_id(
        self, model_id: str | int, is_model_id_removed: bool = True
    ) -> dict[str, Any]:
        """The model's ``selection`` dict (with its id around it when not removed)."""
        return self.model_selector.get_selection_criteria_by_id(
            self._match(model_id), is_model_id_removed=is_model_id_removed
        )

    def get_selection_criteria_by_ids(
        self, model_ids: Sequence[str | int] | None = None, are_model_ids_removed: bool = True
    ) -> list[dict[str, Any]]:
        """The ``selection`` dicts of ``model_ids`` (every model when ``None``)."""
        return self.model_selector.get_selection_criteria_by_ids(
            self._matched_ids(model_ids), are_model_ids_removed=are_model_ids_removed
        )

    def get_selection_values_for_key(
        self, key: str, model_id: str | int | None = None
    ) -> list[Any]:
        """The values at a dotted selection ``key``, for one model or for each model."""
        matched = None if model_id is None else self._match(model_id)
        return self.model_selector.get_selection_values_for_key(key=key, model_id=matched)

    def get_selection_keys(self, model_id: str | int | None = None) -> list[str]:
        """The first-level selection keys of a model, or of all models."""
        matched = None if model_id is None else self._match(model_id)
        return self.model_selector.get_selection_keys(model_id=matched)

    def get_models_by_key_value_pair(
        self, key1: str, value1: object, is_case_sensitive: bool = False
    ) -> list[dict[str, Any]]:
        """``[{"model_id": ..., key1: value1}]`` for the models whose selection has that pair."""
        return self.model_selector.get_models_by_key_value_pair(
            key1=key1, value1=value1, is_case_sensitive=is_case_sensitive
        )

    def rank_models_by_performance(
        self,
        model_ids: Sequence[str | int] | None = None,
        metric: str = "SSIM",
        order: str = "asc",
    ) -> list[dict[str, Any]]:
        """``[{"model_id": ..., metric: value}]`` best first (``order`` ``asc`` or ``desc``)."""
        return self.model_selector.rank_models_by_performance(
            model_ids=self._matched_ids(model_ids), metric=metric, order=order
        )

    def find_matching_models_by_values(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
    ) -> list[ModelMatchCandidate]:
        """The models whose selection holds the search ``values``, as ``ModelMatchCandidate``."""
        return self.model_selector.find_matching_models_by_values(
            values=values,
            target_values_operator=target_values_operator,
            are_keys_also_matched=are_keys_also_matched,
            is_case_sensitive=is_case_sensitive,
        )

    def find_models_and_rank(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
        metric: str = "SSIM",
        order: str = "asc",
    ) -> list[dict[str, Any]]:
        """The matching models ranked by ``metric`` (those without a value left out)."""
        matching = self.find_matching_models_by_values(
            values, target_values_operator, are_keys_also_matched, is_case_sensitive
        )
        if not matching:
            logger.warning("no model matches the values %s", list(values))
            return []
        ranked = self.model_selector.rank_models_by_performance(
            [candidate.model_id for candidate in matching], metric=metric, order=order
        )
        if not ranked:
            logger.warning(
                "none of the %d matching models has a value for %s", len(matching), metric
            )
        return ranked

    def find_models_rank_and_generate(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
        metric: str = "SSIM",
        order: str = "asc",
        num_samples: int = 30,
        output_path: str | None = None,
        is_gen_function_returned: bool = False,
        install_dependencies: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Generate with the best-ranked matching model; :class:`NotFoundError` when none ranks."""
        ranked = self.find_models_and_rank(
            values, target_values_operator, are_keys_also_matched, is_case_sensitive, metric, order
        )
        if not ranked:
            raise NotFoundError(
                f"no model matches the values {list(values)} and has a value for {metric}"
            )
        best = ranked[0][MODEL_ID_KEY]
        logger.info("generating with the best of %d ranked models: %s", len(ranked), best)
        return self.generate(
            model_id=best,
            num_samples=num_samples,
            output_path=output_path,
            is_gen_function_returned=is_gen_function_returned,
            install_dependencies=install_dependencies,
            **kwargs,
        )

    def find_model_and_generate(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
        num_samples: int = 30,
        output_path: str | None = None,
        is_gen_function_returned: bool = False,
        install_dependencies: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Generate with the one model matching ``values``; an error when none or several match."""
        matching = self.find_matching_models_by_values(
            values, target_values_operator, are_keys_also_matched, is_case_sensitive
        )
        if len(matching) != 1:
            found = [candidate.model_id for candidate in matching]
            error = NotFoundError if not found else BadRequestError
            raise error(
                f"{len(found)} models match the values {list(values)} where exactly one must "
                f"({', '.join(found) or 'none'}); add values or use "
                "find_models_rank_and_generate()",
                detail={"matching_models": found},
            )
        return self.generate(
            model_id=matching[0].model_id,
            num_samples=num_samples,
            output_path=output_path,
            is_gen_function_returned=is_gen_function_returned,
            install_dependencies=install_dependencies,
            **kwargs,
        )

    # -- model executor methods ------------------------------------------------------------

    def add_all_model_executors(self) -> None:
        """Download and prepare every model's package (what ``initialize_all_models`` does)."""
        for model_id in self.config_manager.model_ids:
            self.add_model_executor(model_id)

    def add_model_executor(self, model_id: str | int, install_dependencies: bool = False) -> None:
        """Download (once) and prepare the model's package, unless that was done already."""
        model = self._resolve(model_id)
        if self.find_model_executor_by_id(model.model_id) is not None:
            return
        if model.local_package_dir is not None:
            package_dir = model.local_package_dir
        else:
            package_dir = self.client.package(model.card.release_id)
        execution = self._entry(model).get("execution", {})
        self.model_executors.append(
            ModelExecutor(model.model_id, model.card, package_dir, execution, self.options)
        )

    def is_model_executor_already_added(self, model_id: str | int) -> bool:
        """Whether the model's package was prepared already."""
        return self.find_model_executor_by_id(model_id) is not None

    def find_model_executor_by_id(self, model_id: str | int) -> ModelExecutor | None:
        """The prepared executor of the model, or ``None``."""
        matched = self._match(model_id)
        for executor in self.model_executors:
            if executor.model_id == matched:
                return executor
        return None

    def get_model_executor(
        self, model_id: str | int, install_dependencies: bool = False
    ) -> ModelExecutor:
        """The model's executor, prepared (package downloaded and checked) on first use.

        ``install_dependencies`` is accepted for medigan's scripts; a model's dependencies are
        installed by the ``venv`` isolation mode (``Generators(isolation="venv")``).
        """
        self.add_model_executor(model_id, install_dependencies=install_dependencies)
        executor = self.find_model_executor_by_id(model_id)
        if executor is None:  # add_model_executor appended it; this guards a broken invariant
            raise NotFoundError(f"no executor for {model_id!r}")
        return executor

    def generate(
        self,
        model_id: str | int,
        num_samples: int = 30,
        output_path: str | None = None,
        save_images: bool = True,
        is_gen_function_returned: bool = False,
        install_dependencies: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Generate with the model: files in ``output_path``, or samples in memory, or the function.

        ``save_images=True`` (medigan's default) writes files into ``output_path`` (default
        ``output/<model id>/<timestamp>/``) and returns ``None``; ``save_images=False`` returns
        a list of arrays (or of ``(image, mask, ...)`` tuples); ``is_gen_function_returned``
        returns a reusable generate function. ``batch_size`` (default 32) and the model's own
        arguments may be given as keywords.
        """
        executor = self.get_model_executor(model_id, install_dependencies=install_dependencies)
        return executor.generate(
            num_samples=num_samples,
            output_path=output_path,
            save_images=save_images,
            is_gen_function_returned=is_gen_function_returned,
            **kwargs,
        )

    def get_generate_function(
        self,
        model_id: str | int,
        num_samples: int = 30,
        output_path: str | None = None,
        install_dependencies: bool = False,
        **kwargs: Any,
    ) -> Callable[..., Any]:
        """The model's generate function with these arguments (it saves files, as medigan's did)."""
        function: Callable[..., Any] = self.generate(
            model_id=model_id,
            num_samples=num_samples,
            output_path=output_path,
            is_gen_function_returned=True,
            install_dependencies=install_dependencies,
            **kwargs,
        )
        return function

    # -- model contributor methods ---------------------------------------------------------

    def add_model_contributor(
        self, model_id: str, init_py_path: str | Path | None = None
    ) -> ModelContributor:
        """A contributor for the local package of ``init_py_path`` (the existing one if any)."""
        existing = self.get_model_contributor_by_id(model_id)
        if existing is not None:
            logger.warning("%s already has a contributor; returning it", model_id)
            return existing
        if init_py_path is None:
            raise BadRequestError(f"{model_id}: give the path of the package's __init__.py")
        contributor = ModelContributor(model_id, init_py_path)
        self.model_contributors.append(contributor)
        return contributor

    def get_model_contributor_by_id(self, model_id: str) -> ModelContributor | None:
        """The contributor of ``model_id``, or ``None``."""
        for contributor in self.model_contributors:
            if contributor.model_id == str(model_id):
                return contributor
        return None

    def _contributor(self, model_id: str) -> ModelContributor:
        contributor = self.get_model_contributor_by_id(model_id)
        if contributor is None:
            raise NotFoundError(
                f"{model_id}: no contributor yet; call add_model_contributor(model_id, "
                "init_py_path) first"
            )
        return contributor

    def add_metadata_from_file(self, model_id: str, metadata_file_path: str) -> dict[str, Any]:
        """Read the contributed model's medigan metadata from a JSON file (or folder)."""
        return self._contributor(model_id).add_metadata_from_file(metadata_file_path)

    def add_metadata_from_input(
        self,
        model_id: str,
        model_weights_name: str,
        model_weights_extension: str,
        generate_method_name: str,
        dependencies: Sequence[str],
        fill_more_fields_interactively: bool = True,
        output_path: str = "config",
        *,
        image_size: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Build the contributed model's metadata from these values (no terminal prompts)."""
        return self._contributor(model_id).add_metadata_from_input(
            model_weights_name=model_weights_name,
            model_weights_extension=model_weights_extension,
            generate_method_name=generate_method_name,
            dependencies=dependencies,
            fill_more_fields_interactively=fill_more_fields_interactively,
            output_path=output_path,
            image_size=image_size,
        )

    def push_to_zenodo(
        self,
        model_id: str,
        zenodo_access_token: str,
        creator_name: str = "unknown name",
        creator_affiliation: str = "unknown affiliation",
        model_description: str = "",
    ) -> str | None:
        """Upload nothing and return ``None``: the hub publishes from its storage, not Zenodo."""
        self._contributor(model_id)
        logger.warning(
            "%s: nothing was uploaded to Zenodo; the hub publishes a release from its own storage "
            "when a reviewer approves it. Use contribute() or push_to_github() to push to the hub.",
            model_id,
        )
        return None

    def push_to_github(
        self,
        model_id: str,
        github_access_token: str,
        package_link: str | None = None,
        creator_name: str = "",
        creator_affiliation: str = "",
        model_description: str = "",
        *,
        namespace: str | None = None,
        answers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Push the contributed package to the hub for review; return the release's URL.

        Nothing is filed on GitHub (the hub's review replaces it); ``github_access_token`` is not
        used: the push authenticates with the client's hub token. ``namespace`` defaults to
        the token's own on the hub (``GET /api/v1/me``); ``answers`` give card fields the hub
        requires and medigan's metadata lacks (see :meth:`contribute`).
        """
        contributor = self._contributor(model_id)
        card = contributor.card(
            self._contribution_namespace(namespace),
            creator_name=creator_name,
            model_description=model_description,
            answers=answers,
            prompt=None,
        )
        return self._push(contributor, card)

    def _contribution_namespace(self, namespace: str | None) -> str:
        """``namespace``, or the one the hub gives this client's token."""
        return namespace if namespace else hub_namespace(self.client)

    def _push(self, contributor: ModelContributor, card: Card) -> str | None:
        try:
            return push_contribution(contributor, card, self.client.push)
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                f"{exc.message} (pass namespace='<your namespace>' to push elsewhere than "
                f"{card.namespace!r})",
                detail=exc.detail,
            ) from exc

    def test_model(
        self,
        model_id: str,
        is_local_model: bool = True,
        overwrite_existing_metadata: bool = False,
        store_new_config: bool = True,
        num_samples: int = 3,
        install_dependencies: bool = False,
    ) -> None:
        """Generate ``num_samples`` in memory; :class:`GenerationFailedError` if fewer come back."""
        if is_local_model:
            contributor = self._contributor(model_id)
            self.add_model_to_config(
                model_id=model_id,
                metadata=contributor.metadata or {},
                is_local_model=True,
                overwrite_existing_metadata=overwrite_existing_metadata,
                store_new_config=store_new_config,
            )
        samples = self.generate(
            model_id=model_id,
            num_samples=num_samples,
            save_images=False,
            install_dependencies=install_dependencies,
        )
        if not isinstance(samples, list) or len(samples) < num_samples:
            count = len(samples) if isinstance(samples, list) else 0
            raise GenerationFailedError(
                f"{model_id}: the model test asked for {num_samples} samples and got {count}"
            )
        logger.info("%s: the model test generated %d samples", model_id, len(samples))

    def contribute(
        self,
        model_id: str,
        init_py_path: str,
        github_access_token: str,
        zenodo_access_token: str,
        metadata_file_path: str | None = None,
        model_weights_name: str | None = None,
        model_weights_extension: str | None = None,
        generate_method_name: str | None = None,
        dependencies: Sequence[str] | None = None,
        fill_more_fields_interactively: bool = True,
        overwrite_existing_metadata: bool = False,
        output_path: str = "config",
        creator_name: str = "unknown name",
        creator_affiliation: str = "unknown affiliation",
        model_description: str = "",
        install_dependencies: bool = False,
        *,
        namespace: str | None = None,
        image_size: Sequence[int] | None = None,
        answers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Describe, test and push a local model to the hub; return the release's URL.

        medigan uploaded to Zenodo and filed a request on GitHub; here the package and its card are
        pushed to the hub (with the client's token), which reviews them and publishes approved
        releases from its own storage (nothing goes to Zenodo). The GitHub and Zenodo tokens are
        not used.

        The model is published as ``<namespace>/<model_id>``; ``namespace`` defaults to the
        token's own on the hub (``GET /api/v1/me``). The card is made first, as ``medigan-client
        import-medigan`` makes it: card fields the hub requires and medigan's metadata lacks
        (a licence, each training data set's licence) come from ``answers``
        (``{"provenance.training_data.0.licence": "CC-BY-4.0"}``), are asked for on a terminal
        when ``fill_more_fields_interactively``, or raise
        :class:`~medigan_client.compat.importer.CardFieldsMissingError` naming each field,
        before the model is tested or anything is uploaded.
        """
        self.add_model_contributor(model_id=model_id, init_py_path=init_py_path)
        if metadata_file_path is not None:
            self.add_metadata_from_file(model_id, metadata_file_path)
        else:
            self.add_metadata_from_input(
                model_id=model_id,
                model_weights_name=model_weights_name or "",
                model_weights_extension=model_weights_extension or "",
                generate_method_name=generate_method_name or "generate",
                dependencies=list(dependencies or []),
                fill_more_fields_interactively=fill_more_fields_interactively,
                output_path=output_path,
                image_size=image_size,
            )
        interactive = fill_more_fields_interactively and sys.stdin.isatty()
        card = self._contributor(model_id).card(
            self._contribution_namespace(namespace),
            creator_name=creator_name,
            model_description=model_description,
            answers=answers,
            prompt=_terminal_prompt if interactive else None,
        )
        self.test_model(
            model_id=model_id,
            is_local_model=True,
            overwrite_existing_metadata=overwrite_existing_metadata,
            install_dependencies=install_dependencies,
        )
        return self._push(self._contributor(model_id), card)

    # -- datasets and visualisation --------------------------------------------------------

    def get_as_torch_dataloader(
        self,
        dataset: Any = None,
        model_id: str | int | None = None,
        num_samples: int = 1000,
        install_dependencies: bool = False,
        transform: Callable[..., Any] | None = None,
        batch_size: int | None = 1,
        shuffle: bool | None = False,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[..., Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        prefetch_factor: int | None = 2,
        persistent_workers: bool = False,
        **kwargs: Any,
    ) -> DataLoader[Any]:
        """A torch ``DataLoader`` over ``dataset``, or over ``num_samples`` of ``model_id``.

        torch's options are passed on, except ``prefetch_factor`` and ``persistent_workers``
        while ``num_workers`` is 0 (torch 2 refuses them there). ``kwargs`` go to the model.
        """
        if dataset is None:
            if model_id is None:
                raise BadRequestError("give a dataset or the model_id to generate one from")
            dataset = self.get_as_torch_dataset(
                model_id=model_id,
                num_samples=num_samples,
                install_dependencies=install_dependencies,
                transform=transform,
                **kwargs,
            )
        return torch_dataloader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            batch_sampler=batch_sampler,
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            drop_last=drop_last,
            timeout=timeout,
            worker_init_fn=worker_init_fn,
            prefetch_factor=prefetch_factor,
            persistent_workers=persistent_workers,
        )

    def get_as_torch_dataset(
        self,
        model_id: str | int,
        num_samples: int = 100,
        install_dependencies: bool = False,
        transform: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> SyntheticDataset:
        """A torch ``Dataset`` of ``num_samples`` generated samples (dict items, as medigan).

        ``batch_size`` (default 32) sets how many samples each call of the package makes; the
        other ``kwargs`` go to the model.
        """
        executor = self.get_model_executor(model_id, install_dependencies=install_dependencies)
        batches = executor.generate_batches(num_samples, **kwargs)
        return torch_dataset(batches, transform=transform)

    def visualize(
        self,
        model_id: str | int,
        slider_grouper: int = 10,
        auto_close: bool = False,
        install_dependencies: bool = False,
    ) -> Visualiser:
        """Open the client's interactive viewer of the model and return it.

        The viewer (:meth:`Client.visualize`) gives every generation argument a control and
        groups latent dimensions into sliders itself, so ``slider_grouper`` is not used;
        ``auto_close=True`` builds the figure without showing it (medigan closed its window
        after a while, for tests). medigan returned ``None``; the viewer is returned here.
        """
        model = self._resolve(model_id)
        if model.local_package_dir is not None:
            raise BadRequestError(
                f"{model.model_id} is a local model; the viewer shows models of the hub"
            )
        seed = self.options.seed if self.options.seed is not None else secrets.randbits(31)
        return self.client.visualize(
            model.card.release_id,
            seed=seed,
            device=self.options.device,
            isolation=self.options.isolation,
            show=not auto_close,
        )

    # -- the rest of medigan's interface ---------------------------------------------------

    def close(self) -> None:
        """Release every prepared package's runner (and the connections of its own client)."""
        for executor in self.model_executors:
            executor.close()
        if self._owns_client:
            self.client.close()
        for folder in self._scratch_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        self._scratch_dirs.clear()

    def __enter__(self) -> Generators:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ids = self._catalogue.model_ids if self._catalogue is not None else "(not loaded)"
        return (
            f"Generators(model_ids={ids}, model_executors={self.model_executors}, "
            f"hub_url={self.client.settings.hub_url!r})"
        )

    def __len__(self) -> int:
        return len(self.model_executors)

    def __getitem__(self, index: int) -> ModelExecutor:
        return self.model_executors[index]


def _terminal_prompt(field: str, why: str) -> str | None:
    """Ask for one card field on the terminal (medigan asked for metadata this way)."""
    answer = input(f"{field} ({why}); empty to skip: ").strip()
    return answer or None
