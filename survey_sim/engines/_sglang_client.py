"""The HTTP side of the SGLang engine: an asynchronous client on a loop thread of its own
(so notebooks, which already run a loop, work), with a bounded number of calls in flight,
timeouts, and retries with backoff on transient failures. It knows SGLang's endpoints and
errors, not what the engine asks of them (:mod:`survey_sim.engines.sglang`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from survey_sim.errors import ScoringError, ServerError

if TYPE_CHECKING:
    from survey_sim.engines.sglang import SGLangSettings

T = TypeVar("T")
INFO_PATHS = {
    "model": ("/model_info", "/get_model_info"),
    "server": ("/server_info", "/get_server_info"),
}
"""Where servers describe themselves: SGLang 0.5.23 servers answer both names (the second
deprecated), its router (sglang-router 0.3) only the second."""


class SGLangClient:
    """HTTP calls to the SGLang server (or router) at ``url``. Creating it makes no call:
    :meth:`wait_until_up` is the first.

    Attributes:
        on_retry: Called each time a call is sent again (the engine counts retries).
    """

    def __init__(self, url: str, settings: SGLangSettings) -> None:
        self.url, self.settings = url.rstrip("/"), settings
        self.on_retry: Callable[[], None] = lambda: None
        self._loop = _LoopThread()
        self._client: httpx.AsyncClient = self._loop.run(self._open())
        self._semaphore: asyncio.Semaphore = self._loop.run(_semaphore(settings.concurrency))

    async def _open(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.settings.concurrency)
        return httpx.AsyncClient(base_url=self.url, timeout=self.settings.timeout_s, limits=limits)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop thread and wait for it."""
        return self._loop.run(coroutine)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coroutine`` on the loop thread."""
        return self._loop.submit(coroutine)

    def close(self) -> None:
        """Close the HTTP client and stop the loop thread."""
        self._loop.run(self._client.aclose())
        self._loop.stop()

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` to ``path``; the reply's JSON."""
        return await self.call("POST", path, payload)

    async def get(self, path: str, fallback: str) -> Any:
        """GET ``path``, or ``fallback`` where the server (or router) does not know it."""
        try:
            return await self.call("GET", path, None)
        except ScoringError:
            return await self.call("GET", fallback, None)

    async def call(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        """One HTTP call, bounded in concurrency, retried with backoff on transient
        failures; a rejected request or a reply that is not JSON is a clear error."""
        delay = self.settings.backoff_s
        for attempt in range(self.settings.retries + 1):
            async with self._semaphore:
                try:
                    response = await self._client.request(method, path, json=payload)
                except (httpx.TransportError, httpx.TimeoutException) as error:
                    problem = f"{type(error).__name__}: {error}"
                else:
                    if response.status_code == 429 or response.status_code >= 500:
                        problem = f"HTTP {response.status_code}: {response.text[:300]}"
                    elif response.status_code >= 400:
                        raise ScoringError(
                            f"the SGLang server at {self.url} rejected a request to {path} "
                            f"(HTTP {response.status_code}): {response.text[:500]}"
                        )
                    else:
                        try:
                            return response.json()
                        except ValueError as error:
                            raise ScoringError(
                                f"malformed reply from {self.url}{path}: not JSON: "
                                f"{response.text[:200]!r}"
                            ) from error
            if attempt < self.settings.retries:
                self.on_retry()
                await asyncio.sleep(delay)
                delay *= 2
        raise ServerError(
            f"the SGLang server at {self.url} stopped answering ({problem}); results finished "
            "so far are in the results cache: rerun the same command to resume"
        )

    async def wait_until_up(self) -> dict[str, Any]:
        """The server's model info, waiting up to ``connect_timeout_s`` for it to start."""
        deadline = asyncio.get_running_loop().time() + self.settings.connect_timeout_s
        while True:
            try:
                response = await _get_first(self._client, INFO_PATHS["model"])
            except (httpx.TransportError, httpx.TimeoutException) as error:
                if asyncio.get_running_loop().time() > deadline:
                    raise ServerError(
                        f"cannot reach an SGLang server at {self.url} ({error}); start one "
                        "with: survey-sim serve MODEL"
                    ) from error
                await asyncio.sleep(1)
                continue
            try:
                info = response.json()
            except ValueError:
                info = None
            if response.status_code != 200 or not (isinstance(info, dict) and "model_path" in info):
                raise ServerError(
                    f"{self.url} is not an SGLang server: {response.request.url.path} answered "
                    f"HTTP {response.status_code} {response.text[:200]!r}"
                )
            return info


class _LoopThread:
    """An asyncio loop on a daemon thread of its own: callers on any thread (a notebook's
    included, which already runs a loop) submit coroutines and wait on futures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


async def _semaphore(size: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(size)


async def _get_first(client: httpx.AsyncClient, paths: Sequence[str]) -> httpx.Response:
    """The first of ``paths`` the server knows (the last one's answer if none)."""
    for path in paths:
        response = await client.get(path)
        if response.status_code != 404:
            return response
    return response
