"""request_of: which request a command carries, in the documented order."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import msgspec
import pytest

from hubbub.protocol.messages import REQUEST_FIELDS, Command, request_of


def _request(name: str) -> Any:
    """An empty request struct of the type ``Command.<name>`` holds."""
    info = msgspec.inspect.type_info(Command)
    assert isinstance(info, msgspec.inspect.StructType)
    field = next(f for f in info.fields if f.name == name)
    union = field.type
    assert isinstance(union, msgspec.inspect.UnionType)
    struct = next(t for t in union.types if isinstance(t, msgspec.inspect.StructType))
    return struct.cls()


def test_every_request_field_is_found_alone() -> None:
    assert set(REQUEST_FIELDS) == {f for f in Command.__struct_fields__ if f not in ("id",)}
    for name in REQUEST_FIELDS:
        request = _request(name)
        assert request_of(Command(id=1, **{name: request})) == (name, request)


@pytest.mark.parametrize(("first", "later"), list(pairwise(REQUEST_FIELDS)))
def test_the_earlier_field_wins_when_two_are_set(first: str, later: str) -> None:
    command = Command(id=1, **{first: _request(first), later: _request(later)})
    found = request_of(command)
    assert found is not None and found[0] == first


def test_no_request() -> None:
    assert request_of(Command(id=1)) is None
