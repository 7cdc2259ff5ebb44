"""The memory engines in the conformance suite."""

from conformance.support import Case
from hubbub.engines.memory import MemoryBroker, MemoryPresenceStore

BROKER = Case(lambda clock: MemoryBroker(clock=clock))
PRESENCE = Case(lambda clock: MemoryPresenceStore(clock=clock))
