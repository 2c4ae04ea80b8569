"""Router artifacts in the store: appended by (name, content version), the same bytes stored
twice are one row, the newest is what a name without a version means, and listing reads the
provenance without the bytes; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from modelyard.store import Store, VersionConflict
from modelyard.store.routers import NewRouter, RouterArtifacts


def _new(version: str, blob: bytes, name: str = "mmlu") -> NewRouter:
    return NewRouter(name, version, "d" * 64, "mixtral", "gpt-4", 3, '{"seed": 3}', blob)


async def test_put_get_list_and_the_newest(store: Store) -> None:
    async with store.transaction() as session:
        first, added = await RouterArtifacts(session).put(_new("aaa", b"one"))
        assert added
    async with store.transaction() as session:
        again, added_again = await RouterArtifacts(session).put(_new("aaa", b"one"))
        await RouterArtifacts(session).put(_new("bbb", b"two"))
        await RouterArtifacts(session).put(_new("zzz", b"other", name="gsm"))
    assert not added_again and again == first
    async with store.transaction() as session:
        repo = RouterArtifacts(session)
        assert await repo.artifact("mmlu") == ("bbb", b"two")
        assert await repo.artifact("mmlu", "aaa") == ("aaa", b"one")
        assert await repo.artifact("mmlu", "nope") is None
        assert await repo.artifact("missing") is None
        listed = await repo.list()
        only = await repo.list("mmlu")
        newest = await repo.get("mmlu")
    assert [(r.name, r.version) for r in listed] == [
        ("mmlu", "aaa"),
        ("mmlu", "bbb"),
        ("gsm", "zzz"),
    ]
    assert [r.version for r in only] == ["aaa", "bbb"]
    assert newest is not None and newest.version == "bbb"
    assert newest.created_at.tzinfo is not None
    assert (newest.seed, newest.weak_model, newest.data_sha256) == (3, "mixtral", "d" * 64)


async def test_a_second_row_with_the_same_version_is_refused(store: Store) -> None:
    from datetime import UTC, datetime

    from modelyard.store.routers import RouterArtifactRow

    async with store.transaction() as session:
        await RouterArtifacts(session).put(_new("aaa", b"one"))
    with pytest.raises(VersionConflict):
        async with store.transaction() as session:
            session.add(
                RouterArtifactRow(
                    name="mmlu",
                    version="aaa",
                    data_sha256="",
                    weak_model="",
                    strong_model="",
                    seed=0,
                    provenance="{}",
                    artifact=b"x",
                    created_at=datetime.now(UTC),
                )
            )
