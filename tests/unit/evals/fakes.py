"""A fake caller with known answer quality, and a dataset to run it on."""

from __future__ import annotations

import asyncio

from modelyard.core.chat import ChatRequest
from modelyard.evals.datasets import Dataset, parse_dataset
from modelyard.evals.runner import CallOutcome

# Per deployment: which case indexes (mod 10) it answers right, and its cost per call.
QUALITY = {
    "good": (set(range(1, 10)), 1000),  # 90 %
    "good-cheap": (set(range(2, 10)), 380),  # 80 %, not significantly worse than good
    "bad": (set(range(4)), 300),  # 40 %
}


def arithmetic(n: int = 40) -> Dataset:
    lines = [
        f'{{"id": "q{i}", "input": "What is {i} + {i}?", "expected": "{2 * i}", '
        '"grader": "contains", "grader_options": {"whole_word": true}}'
        for i in range(n)
    ]
    return parse_dataset("\n".join(lines), name="arithmetic")


class FakeCaller:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, deployment: str, request: ChatRequest) -> CallOutcome:
        await asyncio.sleep(0)
        prompt = request.messages[-1].text()
        i = int(prompt.split()[2])
        self.calls.append((deployment, f"q{i}"))
        right, cost = QUALITY[deployment]
        answer = 2 * i if i % 10 in right else 2 * i + 1
        return CallOutcome(
            text=f"The answer is {answer}.",
            input_tokens=10,
            output_tokens=5,
            latency_s=0.1 * (1 + i % 5),
            cost_micros=cost,
        )
