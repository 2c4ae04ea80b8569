"""One real request before each measurement: a fast wrong answer must not count as throughput."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from bench.load import BENCH_KEY, request_body
from bench.procs import BenchError
from bench.upstream import REPLY_TEXT


def _post(url: str, body: str, key: str) -> tuple[int, str, str]:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            ctype = response.headers.get("Content-Type", "")
            return int(response.status), ctype, response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), "", exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"probe POST {url} failed: {exc}") from exc


def _stream_text(body: str) -> tuple[str, bool]:
    """The concatenated content of an SSE chat stream and whether it ended with ``[DONE]``."""
    pieces: list[str] = []
    done = False
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            done = True
            continue
        frame = json.loads(data)
        if "error" in frame:
            raise BenchError(f"stream carried an error event: {data[:500]}")
        for choice in frame.get("choices") or []:
            pieces.append((choice.get("delta") or {}).get("content") or "")
    return "".join(pieces), done


def check_chat(url: str, model: str, stream: bool, key: str = BENCH_KEY) -> None:
    """POST the benchmark request once and check the answer is the fake upstream's reply."""
    status, ctype, body = _post(url, request_body(model, stream), key)
    if status != 200:
        raise BenchError(f"probe POST {url} ({model}) answered {status}: {body[:500]}")
    try:
        if stream:
            if not ctype.startswith("text/event-stream"):
                raise BenchError(f"probe stream answered Content-Type {ctype!r}")
            text, done = _stream_text(body)
            if not done:
                raise BenchError("probe stream did not end with data: [DONE]")
        else:
            text = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BenchError(f"probe POST {url} ({model}) returned a malformed body: {exc}") from exc
    if text != REPLY_TEXT:
        raise BenchError(f"probe POST {url} ({model}) returned {text!r}, expected {REPLY_TEXT!r}")
