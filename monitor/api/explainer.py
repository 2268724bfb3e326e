"""Explanations on demand: the model loaded lazily in the API process, one explanation at a time, an LRU cache.

The monitor's services never import workers (a layer contract), so whoever builds the app hands it a loader
(`monitor api` passes one that loads `workers.explain.Explainer` for MODEL_CHECKPOINT); without one, or with
API_EXPLANATIONS=false, there is nothing to explain with.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from core.logging import get_logger
from schemas import Post

log = get_logger(__name__)

CACHE_SIZE = 256
"""Explanations kept in memory: a post's explanation never changes for one model, and a dashboard asks again."""


class PostExplainer(Protocol):
    """What `workers.explain.Explainer` offers the API."""

    @property
    def version(self) -> str: ...

    def explain(self, post: Post) -> Any:
        """An object with the attributes of `monitor.api.models.Explanation`'s model part."""


ExplainerLoader = Callable[[], PostExplainer]


class ModelUnavailable(RuntimeError):
    """The explaining model could not be loaded (logged); a later request tries again."""


class Explanations:
    """Owns the explaining model: loaded on first use in a thread, used by one request at a time (the
    computation takes the CPU for a while, and the model is not shared between threads)."""

    def __init__(self, loader: ExplainerLoader | None, cache_size: int = CACHE_SIZE) -> None:
        self.loader = loader
        self.cache_size = cache_size
        self._explainer: PostExplainer | None = None
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._turn = asyncio.Semaphore(1)

    @property
    def available(self) -> bool:
        return self.loader is not None

    async def explain(self, post: Post) -> tuple[str, Any]:
        """(model id, explanation) of `post`, from the cache when this model explained it before."""
        if (cached := self._cached(post.post_id)) is not None:
            return cached
        async with self._turn:
            explainer = self._explainer or await self._load()
            if (cached := self._cached(post.post_id)) is not None:  # explained while this request waited
                return cached
            explanation = await asyncio.to_thread(explainer.explain, post)
            self._cache[(post.post_id, explainer.version)] = explanation
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return explainer.version, explanation

    def _cached(self, post_id: str) -> tuple[str, Any] | None:
        if self._explainer is None:
            return None
        key = (post_id, self._explainer.version)
        if key not in self._cache:
            return None
        self._cache.move_to_end(key)
        return key[1], self._cache[key]

    async def _load(self) -> PostExplainer:
        assert self.loader is not None
        try:
            self._explainer = await asyncio.to_thread(self.loader)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the same 503 to the client
            log.error("explanations: model could not be loaded", error=str(exc)[:500], error_type=type(exc).__name__)
            raise ModelUnavailable(str(exc)) from exc
        log.info("explanations: model loaded", model=self._explainer.version)
        return self._explainer
