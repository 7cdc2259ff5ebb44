"""hubbub: a real-time chat and messaging server speaking the Centrifuge protocol v2."""

from hubbub.config import Settings
from hubbub.core.hooks import Allow, ClientContext, Credentials, Deny, Hooks
from hubbub.core.node import Node

__all__ = ["Allow", "ClientContext", "Credentials", "Deny", "Hooks", "Node", "Settings"]
__version__ = "0.1.0"
