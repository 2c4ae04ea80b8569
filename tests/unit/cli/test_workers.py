"""``modelyard serve``'s worker count when ``--workers`` is not given."""

from __future__ import annotations

import pytest

from modelyard.cli.parser import build_parser
from modelyard.cli.serve import default_workers
from modelyard.config.loader import settings_from_data
from modelyard.services.root import REDIS_URL_ENV

SHARED = {"limits": {"redis_url": "redis://127.0.0.1:6379/0"}}


@pytest.fixture(autouse=True)
def _no_redis_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)


def test_one_worker_while_the_limits_live_in_each_process() -> None:
    workers, why = default_workers(settings_from_data({}), cpus=8)
    assert workers == 1 and "Redis" in why


def test_with_shared_limits_the_cpus_the_model_leaves_free() -> None:
    assert default_workers(settings_from_data(SHARED), cpus=2)[0] == 1  # 1 model thread
    assert default_workers(settings_from_data(SHARED), cpus=8)[0] == 1  # 7 model threads
    pinned = {**SHARED, "local": {"threads": 2}}
    assert default_workers(settings_from_data(pinned), cpus=8)[0] == 6
    no_model = {**SHARED, "local": {"enabled": False}}
    assert default_workers(settings_from_data(no_model), cpus=2)[0] == 2


def test_the_redis_url_from_the_environment_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:6379/0")
    no_model = {"local": {"enabled": False}}
    assert default_workers(settings_from_data(no_model), cpus=4)[0] == 4


@pytest.mark.parametrize("given", ["0", "-2", "many"])
def test_a_worker_count_below_one_is_refused(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", given])
    assert "1 or more" in capsys.readouterr().err
    assert build_parser().parse_args(["serve", "--workers", "3"]).workers == 3
    assert build_parser().parse_args(["serve"]).workers is None
