"""hubbub: a real-time chat and messaging server speaking the Centrifuge protocol v2.

The names below are imported lazily, so that ``import hubbub.protocol`` does not load
the whole server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubbub.config import Settings
    from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny, Hooks
    from hubbub.core.node import Node

__all__ = ["Allow", "ClientContext", "Credentials", "Deny", "Hooks", "Node", "Settings"]
__version__ = "0.1.0"

_WHERE = {
    "Settings": "hubbub.config",
    "Allow": "hubbub.core.hooks",
    "ClientContext": "hubbub.core.hooks",
    "Credentials": "hubbub.core.hooks",
    "Deny": "hubbub.core.hooks",
    "Hooks": "hubbub.core.hooks",
    "Node": "hubbub.core.node",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hubbub' has no attribute {name!r}")
    return getattr(import_module(module), name)
