"""Tests for hubbub.core.channels: namespaces and personal channels."""

from __future__ import annotations

import pytest

from hubbub.core.channels import MAX_CHANNEL_LENGTH, allowed_users, is_valid_name, namespace_of


@pytest.mark.parametrize(
    ("channel", "namespace"),
    [
        ("chat:lobby", "chat"),
        ("chat:a:b", "chat"),  # split at the first ':'
        ("dm:#42,43", "dm"),
        ("lobby", None),
        ("#42", None),
        (":odd", ""),
    ],
)
def test_namespace_of(channel: str, namespace: str | None) -> None:
    """The namespace is what precedes the first ':'; no ':' means the default options."""
    assert namespace_of(channel) == namespace


@pytest.mark.parametrize(
    ("channel", "users"),
    [
        ("#42", {"42"}),
        ("dm:#42,43", {"42", "43"}),
        ("#alice", {"alice"}),
        ("chat:room#7", {"7"}),
        ("dm:#42,,43,", {"42", "43"}),  # empty ids are dropped
    ],
)
def test_allowed_users_of_personal_channels(channel: str, users: set[str]) -> None:
    """After '#' come the comma-separated ids of the only users who may subscribe."""
    assert allowed_users(channel) == frozenset(users)


@pytest.mark.parametrize("channel", ["lobby", "chat:lobby", "a:b:c"])
def test_plain_channels_have_no_user_limit(channel: str) -> None:
    """A channel without '#' is an ordinary channel: None, not an empty set."""
    assert allowed_users(channel) is None


@pytest.mark.parametrize("channel", ["#", "dm:#", "#,"])
def test_personal_channel_without_ids_admits_nobody(channel: str) -> None:
    """A '#' with no ids limits the channel to no user at all, not to everyone."""
    users = allowed_users(channel)
    assert users is not None
    assert not users
    assert "" not in users  # not even the anonymous user


def test_valid_names() -> None:
    """A name is valid when non-empty and at most 255 characters."""
    assert is_valid_name("a")
    assert is_valid_name("x" * MAX_CHANNEL_LENGTH)
    assert not is_valid_name("")
    assert not is_valid_name("x" * (MAX_CHANNEL_LENGTH + 1))
