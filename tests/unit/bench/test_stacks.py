"""bench.stacks: the table of stacks, its command line, its ratios, and each stack serving."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.clients import AIOHTTP, HTTPX, PYREQWEST, client_named
from bench.gateways import MODEL, STREAM_MODEL, GatewaySpec, run_gateway
from bench.interleaved import Sample
from bench.probe import check_chat
from bench.servers import GRANIAN, HYPERCORN, UVICORN, UVICORN_STOCK, serve
from bench.stacks import (
    APP_FACTORY,
    MODELYARD,
    PROXY,
    STACKS,
    Stack,
    Stacks,
    as_serve_would,
    chosen,
    parse_args,
    stack_spec,
)
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream

from modelyard.observability.metrics import MULTIPROC_ENV
from tests.spawning import spawning


def test_every_stack_is_compared_with_todays_stack_for_its_app() -> None:
    names = [stack.name for stack in STACKS]
    assert len(set(names)) == len(names)
    assert "proxy/uvicorn+aiohttp" in names and "modelyard/uvicorn+aiohttp" in names
    for stack in STACKS:
        assert stack.today == Stack(stack.app, UVICORN, AIOHTTP)
        assert stack.today in STACKS
    # every other server and client is measured on the same app as today's stack
    servers = {UVICORN, UVICORN_STOCK, GRANIAN, HYPERCORN}
    assert {s.server for s in STACKS if s.app == PROXY} == servers
    assert {s.server for s in STACKS if s.app == MODELYARD} == servers
    assert {s.client for s in STACKS if s.app == MODELYARD} == {AIOHTTP}


def test_a_chosen_stack_brings_todays_stack_along_in_table_order() -> None:
    picked = chosen(["modelyard/granian+aiohttp", "proxy/uvicorn+pyreqwest"])
    assert [s.name for s in picked] == [
        "proxy/uvicorn+aiohttp",
        "proxy/uvicorn+pyreqwest",
        "modelyard/uvicorn+aiohttp",
        "modelyard/granian+aiohttp",
    ]
    with pytest.raises(Exception, match="unknown stack proxy/nginx"):
        chosen(["proxy/nginx+aiohttp"])


def test_the_command_line() -> None:
    args = parse_args([])
    assert (args.rounds, args.seconds, args.connections, args.only) == (5, 3.0, 32, None)
    assert args.stacks == [stack.name for stack in STACKS]
    args = parse_args(["--rounds", "2", "--only", "stream", "--stacks", "proxy/granian+aiohttp"])
    assert (args.rounds, args.only, args.stacks) == (2, "stream", ["proxy/granian+aiohttp"])
    assert parse_args(["--cpu", str(min(os.sched_getaffinity(0)))]).cpu in os.sched_getaffinity(0)
    for wrong in (
        ["--rounds", "0"],
        ["--seconds", "0"],
        ["--stacks", "proxy/iis+aiohttp"],
        ["--cpu", str(max(os.sched_getaffinity(0)) + 1)],
    ):
        with pytest.raises(SystemExit):
            parse_args(wrong)


def _sample(rps: float, cpu_us: float) -> Sample:
    return Sample(rps, cpu_us, p50_ms=1.0, p99_ms=2.0, requests=int(rps))


def test_each_stack_is_a_ratio_of_todays_stack_for_the_same_app_and_round() -> None:
    result = Stacks(rounds=3, seconds=1.0, connections=32)
    result.samples["nonstream"] = {
        "proxy/uvicorn+aiohttp": [_sample(1000, 100), _sample(500, 100), _sample(800, 100)],
        "proxy/granian+aiohttp": [_sample(1500, 80), _sample(600, 90), _sample(800, 50)],
        "modelyard/uvicorn+aiohttp": [_sample(400, 300), _sample(200, 300), _sample(400, 300)],
        "modelyard/granian+aiohttp": [_sample(440, 330), _sample(300, 240), _sample(400, 150)],
    }
    assert result.ratios("nonstream", "proxy/granian+aiohttp") == [1.5, 1.2, 1.0]
    assert result.ratio("nonstream", "modelyard/granian+aiohttp") == pytest.approx(1.1)
    assert result.ratio("nonstream", "modelyard/uvicorn+aiohttp") == 1.0
    assert result.cpu_ratios("nonstream", "modelyard/granian+aiohttp") == [1.1, 0.8, 0.5]
    table = result.table("nonstream")
    assert "÷ today" in table[0]
    row = next(line for line in table if line.startswith("proxy/granian+aiohttp"))
    assert row.split()[1:3] == ["800", "1.200"]  # median req/s, median ratio
    # Modelyard ÷ the proxy on the same server: 440/1500, 300/600, 400/800
    assert result.across_apps("nonstream") == [
        "  nonstream: Modelyard ÷ parsing proxy on uvicorn: 0.400",
        "  nonstream: Modelyard ÷ parsing proxy on granian: 0.500",
    ]


def test_modelyard_under_another_server_gets_the_environment_serve_gives_its_workers(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    stale = data / "prometheus" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier run's values")
    config = str(tmp_path / "modelyard.yaml")
    serve_cmd = ["modelyard", "serve", "--port", "9999", "--workers", "1", "--config", config]
    spec = GatewaySpec("m", serve_cmd, "/readyz", 9999, {"MODELYARD_DATA_DIR": str(data)})
    served = as_serve_would(spec, GRANIAN)
    assert served.argv[1:] == [
        "-m", "bench.servers", "--server", "granian", "--factory", APP_FACTORY, "--port", "9999",
    ]  # fmt: skip
    assert served.env["MODELYARD_CONFIG"] == config
    assert served.env["MODELYARD_DATA_DIR"] == str(data)
    assert served.env[MULTIPROC_ENV] == str(data / "prometheus")
    assert not stale.exists() and (data / "prometheus").is_dir()
    assert (served.name, served.port, served.ready_path) == ("m", 9999, "/readyz")


def test_a_proxy_stack_is_the_parsing_proxy_on_that_server_and_client() -> None:
    upstream = Upstream(port=1234, pid=1)
    spec = stack_spec(Stack(PROXY, UVICORN, HTTPX), upstream)
    assert spec.name == "proxy-parsing-uvicorn-httpx"
    assert spec.argv[spec.argv.index("--client") + 1] == HTTPX
    assert spec.argv[spec.argv.index("--kind") + 1] == "parsing"
    assert spec.argv[spec.argv.index("--upstream") + 1] == "http://127.0.0.1:1234"
    with pytest.raises(Exception, match="aiohttp only"):
        stack_spec(Stack(MODELYARD, UVICORN, PYREQWEST), upstream)
    pinned = stack_spec(Stack(PROXY, GRANIAN), upstream, cpu=1)
    assert pinned.argv[:3] == ["taskset", "-c", "1"]
    assert pinned.argv[3:6] == [sys.executable, "-m", "bench.proxies"]


def test_unknown_servers_and_clients_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown server 'iis'"):
        serve("iis", "bench.proxies:app_from_env", 1)
    with pytest.raises(ValueError, match="unknown client 'curl'"):
        client_named("curl")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    spawning("the nginx fake upstream", "integration")
    with run_upstream(ensure_tools()["nginx"]) as running:
        yield running


@pytest.mark.integration
@pytest.mark.parametrize("stack", STACKS, ids=[s.name for s in STACKS])
def test_every_stack_serves_the_fakes_answer_whole(stack: Stack, upstream: Upstream) -> None:
    with run_gateway(stack_spec(stack, upstream)) as gateway:
        check_chat(gateway.chat_url, MODEL, stream=False)
        check_chat(gateway.chat_url, STREAM_MODEL, stream=True)
