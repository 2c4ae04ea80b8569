"""The fake upstream: one nginx worker answering fixed OpenAI-shaped bodies on loopback.

``POST /v1/chat/completions`` returns a ``chat.completion`` JSON with usage;
``POST /stream/v1/chat/completions`` returns a fixed SSE body of ``chat.completion.chunk`` frames,
a usage chunk and ``data: [DONE]``. nginx does not read the request body for ``return``, so the
answer is the same whatever is posted, which is what a fixed-cost upstream should be.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, WORK_DIR, free_port, service, wait_ready

CREATED = 1_700_000_000
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
REPLY_PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
REPLY_TEXT = "".join(REPLY_PIECES)
USAGE: dict[str, Any] = {
    "prompt_tokens": 9,
    "completion_tokens": len(REPLY_PIECES),
    "total_tokens": 9 + len(REPLY_PIECES),
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def completion_body() -> str:
    """A real-shaped non-streamed ``chat.completion``."""
    return _dumps(
        {
            "id": "chatcmpl-bench0000000000000000000001",
            "object": "chat.completion",
            "created": CREATED,
            "model": UPSTREAM_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY_TEXT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def _chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> str:
    frame = {
        "id": "chatcmpl-bench0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
        "choices": choices,
        "usage": usage,
    }
    return f"data: {_dumps(frame)}\n\n"


def stream_body() -> str:
    """A fixed SSE body: role, content pieces, finish, usage chunk, ``[DONE]``."""

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    frames = [_chunk(choice({"role": "assistant", "content": "", "refusal": None}), None)]
    frames += [_chunk(choice({"content": piece}), None) for piece in REPLY_PIECES]
    frames.append(_chunk(choice({}, "stop"), None))
    frames.append(_chunk([], USAGE))
    frames.append("data: [DONE]\n\n")
    return "".join(frames)


def models_body() -> str:
    return _dumps(
        {
            "object": "list",
            "data": [{"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "b"}],
        }
    )


def _nginx_string(text: str) -> str:
    """Quote ``text`` for an nginx config single-quoted string."""
    # ``return`` bodies are complex values: a dollar sign would start a variable.
    if "$" in text:
        raise ValueError("fixed bodies must not contain '$'")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _user_directive() -> str:
    # As root, nginx would hand the worker to "nobody"; keep it as whoever runs the benchmark.
    if os.geteuid() == 0:
        return f"user {pwd.getpwuid(os.geteuid()).pw_name};"
    return ""


def nginx_config(port: int, prefix: Path) -> str:
    """An nginx.conf for one worker, all state under ``prefix``, listening on loopback ``port``."""
    routes = {
        "/v1/chat/completions": ("application/json", completion_body()),
        "/stream/v1/chat/completions": ("text/event-stream", stream_body()),
        "/v1/models": ("application/json", models_body()),
        "/stream/v1/models": ("application/json", models_body()),
    }
    locations = "\n".join(
        f"        location = {path} {{\n"
        f"            default_type {ctype};\n"
        f"            return 200 {_nginx_string(body)};\n"
        f"        }}"
        for path, (ctype, body) in routes.items()
    )
    return f"""{_user_directive()}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen {LOOPBACK}:{port} backlog=4096;
{locations}
        location / {{
            return 404;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Upstream:
    """Where the fake upstream answers."""

    port: int
    pid: int

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def stream_base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/stream/v1"


@contextlib.contextmanager
def run_upstream(nginx: str) -> Iterator[Upstream]:
    """Run our own nginx instance (not the system daemon) for the ``with`` block."""
    prefix = WORK_DIR / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(port, prefix))
    argv = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    with service("nginx", argv) as svc:
        wait_ready(svc, f"http://{LOOPBACK}:{port}/v1/models", timeout=15)
        yield Upstream(port=port, pid=svc.pid)
