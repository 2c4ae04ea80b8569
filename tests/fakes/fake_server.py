"""What every vendor fake shares, written once: serving its app on loopback in a thread, its
addresses, the requests it recorded, and (for the fakes that take them) scripted answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Generic, Protocol, Self, TypeVar

import uvicorn
from starlette.types import ASGIApp

from tests.fakes.serving import serve_in_thread

from .openai_app import ScriptHandler
from .openai_faults import QuietAborts

R = TypeVar("R")
_STOP_TIMEOUT = 10.0


class Releasable(Protocol):
    """A fake app's state: the loop it runs on and the event that releases waiting requests
    (``hang``, ``slow-N``) when the fake stops, both set once it serves."""

    closing: asyncio.Event | None
    loop: asyncio.AbstractEventLoop | None


class FakeServer(ABC, Generic[R]):
    """A fake upstream's life: ``start``/``stop`` (or ``with``), ``port``, ``url``,
    ``base_url`` and the recorded requests of type ``R``."""

    name: ClassVar[str]  # e.g. ``FakeOpenAI``, in messages
    base_path: ClassVar[str] = ""  # what a client's base URL adds to the server root

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[R] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_filter = QuietAborts()

    @abstractmethod
    def _app(self) -> ASGIApp:
        """The app to serve."""

    @property
    @abstractmethod
    def _releasable(self) -> Releasable:
        """The app's state, whose waiting requests ``stop`` releases."""

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        thread_name = "fake-" + self.name.removeprefix("Fake").lower()
        self._server, self._thread, self._port = serve_in_thread(
            self._app(), thread_name, self._log_filter, 2
        )
        return self

    def stop(self) -> None:
        """Stop serving; requests still waiting (``hang``, ``slow-N``) are released first."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        state = self._releasable
        loop, closing = state.loop, state.closing
        if loop is not None and closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(closing.set)
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self._server = self._thread = self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the vendor's clients take as their base URL: the root and ``base_path``."""
        return self.url + self.base_path

    @property
    def requests(self) -> list[R]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> R:
        with self._lock:
            if not self._requests:
                raise LookupError(f"{self.name} has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests (scripts stay registered)."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: R) -> None:
        with self._lock:
            self._requests.append(request)


class ScriptedFake(FakeServer[R]):
    """A fake whose answers a test can script by model (``script``)."""

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, ScriptHandler] = {}

    def script(self, model: str, handler: ScriptHandler) -> None:
        """Answer every request for ``model`` with ``handler`` (an async ``handler(request,
        body) -> Response``), before any scenario applies."""
        with self._lock:
            self._scripts[model] = handler

    def unscript(self, model: str) -> None:
        with self._lock:
            self._scripts.pop(model, None)

    def _script_for(self, model: str) -> ScriptHandler | None:
        with self._lock:
            return self._scripts.get(model)
