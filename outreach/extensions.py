"""Extension points: how a lower layer calls into a higher one without importing it.

The apps are layered (outreach < contacts < campaigns < messaging < analytics; see
docs/internal-interfaces.md). When a lower app needs something only a higher one knows (contacts must not
delete a contact that campaigns is still mailing), it declares an `ExtensionPoint` in its `interface.py`
and calls it; the higher app provides the function in its `AppConfig.ready()`. The dependency stays one
way, and the call site still reads as an ordinary function call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured

F = TypeVar("F", bound=Callable[..., Any])


class ExtensionPoint(Generic[F]):
    """One function, provided once by a higher layer at start-up, called by the layer that declares it.

    Without a provider the call uses `default`, or fails loudly when there is none: a missing provider is
    a wiring mistake, never a silent no-op.
    """

    def __init__(self, name: str, *, default: F | None = None) -> None:
        self.name = name
        self._default = default
        self._provider: F | None = None

    def provide(self, function: F) -> F:
        if self._provider is not None and self._provider is not function:
            raise ImproperlyConfigured(f"extension point {self.name} is provided twice")
        self._provider = function
        return function

    @property
    def provided(self) -> bool:
        return self._provider is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        function = self._provider or self._default
        if function is None:
            raise ImproperlyConfigured(f"extension point {self.name} has no provider (is its app installed?)")
        return function(*args, **kwargs)


class Listeners(Generic[F]):
    """Any number of functions told of something that happened, in registration order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[F] = []

    def connect(self, function: F) -> F:
        if function not in self._listeners:
            self._listeners.append(function)
        return function

    def send(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [listener(*args, **kwargs) for listener in self._listeners]
