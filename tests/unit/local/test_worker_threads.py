"""The local worker's default thread count: one CPU left for everything else."""

from __future__ import annotations

import pytest

from modelyard.local.cpus import default_threads
from modelyard.local.worker import parse_args


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_the_default_leaves_one_cpu_free_and_keeps_at_least_one_thread(cpus: int, threads: int):
    assert default_threads(cpus) == threads


def test_an_explicit_thread_count_is_kept_and_zero_is_refused(capsys: pytest.CaptureFixture[str]):
    assert parse_args(["--model", "m=/x.gguf", "--threads", "2"]).threads == 2
    with pytest.raises(SystemExit):
        parse_args(["--model", "m=/x.gguf", "--threads", "0"])
    assert "must be at least 1" in capsys.readouterr().err
