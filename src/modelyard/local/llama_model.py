"""The llama.cpp side of a local model: loading, metered generation, embeddings, grammars.

Nothing here is thread-safe, by design: each model's ``Llama`` instances are touched only by that
model's one inference thread (see ``engine.py``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar, json_schema_to_gbnf

from modelyard.core.chat import ResponseFormat
from modelyard.core.errors import InvalidRequest
from modelyard.local.paths import DEFAULT_CTX
from modelyard.local.wire import ChatParams

EMBEDDING_CTX = 2048
"""Context of the embedding instance; one input must fit in one batch, so this bounds an input."""


@dataclass(frozen=True)
class LoadOptions:
    threads: int
    ctx: int | None = None


@dataclass(frozen=True)
class LoadedModel:
    name: str
    path: Path
    n_ctx: int
    n_ctx_train: int
    n_embd: int
    created: int


class TokenMeter:
    """What one generation consumed, and the switch that stops it."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.prompt_tokens = 0
        self.completion_tokens = 0


class MeteredLlama(Llama):
    """A ``Llama`` that counts the tokens of a generation and stops it between two tokens.

    ``create_chat_completion`` reports usage only when it does not stream, and offers no way to
    stop a generation early; both hook naturally into ``generate``, which every completion path
    runs through, one token at a time.
    """

    _meter: TokenMeter | None = None

    def metered(self, cancel: threading.Event) -> TokenMeter:
        """Meter (and make cancellable) the next generation."""
        self._meter = TokenMeter(cancel)
        return self._meter

    def generate(
        self, tokens: Sequence[int], *args: Any, **kwargs: Any
    ) -> Generator[int, Sequence[int] | None, None]:
        meter = self._meter or TokenMeter(threading.Event())
        vocab = llama_cpp.llama_model_get_vocab(self.model)
        meter.prompt_tokens = len(tokens)
        inner = super().generate(tokens, *args, **kwargs)
        try:
            for token in inner:
                if meter.cancel.is_set():
                    return
                # The end-of-generation token is not part of the completion, as in llama's usage.
                if not llama_cpp.llama_vocab_is_eog(vocab, token):
                    meter.completion_tokens += 1
                yield token
        finally:
            inner.close()


def _n_ctx_train(llama: Llama) -> int:
    metadata: dict[str, str] = llama.metadata
    architecture = metadata.get("general.architecture", "")
    declared = metadata.get(f"{architecture}.context_length", "")
    if declared.isdigit():
        return int(declared)
    return int(llama_cpp.llama_model_n_ctx_train(llama.model))


def load_chat_model(
    name: str, path: Path, options: LoadOptions
) -> tuple[MeteredLlama, LoadedModel]:
    """Load the chat instance of a model; blocking, seconds for a big model."""
    ctx = options.ctx or DEFAULT_CTX
    llama = _load_metered(path, ctx, options.threads)
    train = _n_ctx_train(llama)
    if options.ctx is None and 0 < train < ctx:
        # Running past the training context degrades output; only an explicit --ctx may do it.
        llama.close()
        llama = _load_metered(path, train, options.threads)
    info = LoadedModel(name, path, int(llama.n_ctx()), train, int(llama.n_embd()), int(time.time()))
    return llama, info


def _load_metered(path: Path, ctx: int, threads: int) -> MeteredLlama:
    # chat_format stays unset so llama-cpp-python renders with the GGUF's own chat template.
    return MeteredLlama(
        model_path=str(path),
        n_ctx=ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


def load_embedder(chat: Llama, path: Path, threads: int) -> Llama:
    """Load a separate embedding instance of the model behind ``chat``."""
    metadata: dict[str, str] = chat.metadata
    architecture = metadata.get("general.architecture", "")
    declared = metadata.get(f"{architecture}.pooling_type")
    # Embedding models declare their pooling; chat models do not (or declare "none", a vector per
    # token), and for them the mean over the tokens is the usual sentence embedding.
    if declared is None or declared == str(llama_cpp.LLAMA_POOLING_TYPE_NONE):
        pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
    else:
        pooling = llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED
    ctx = min(EMBEDDING_CTX, int(chat.n_ctx()))
    return Llama(
        model_path=str(path),
        embedding=True,
        pooling_type=pooling,
        n_ctx=ctx,
        n_batch=ctx,
        n_ubatch=ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


def grammar_for(response_format: ResponseFormat) -> LlamaGrammar | None:
    """The grammar that constrains output to ``response_format``; ``None`` for plain text."""
    if response_format.kind == "text":
        return None
    if response_format.kind == "json_object" or response_format.schema is None:
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    try:
        gbnf = json_schema_to_gbnf(json.dumps(response_format.schema))
        return LlamaGrammar.from_string(_strict_strings(gbnf), verbose=False)
    # The schema converter reports unsupported schemas with assertions and lookups that fail.
    except (AssertionError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        param = "response_format.json_schema.schema"
        raise InvalidRequest(f"{param}: unsupported JSON schema: {exc}", param=param) from exc


def grammar_for_schema(schema: dict[str, Any]) -> LlamaGrammar:
    """The grammar for a JSON schema built here (the tool-call schema of ``local/tools.py``)."""
    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except (AssertionError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise InvalidRequest(f"tools: unsupported JSON schema: {exc}", param="tools") from exc
    return LlamaGrammar.from_string(_strict_strings(gbnf), verbose=False)


# The schema converter's string rule admits raw control characters, which JSON forbids inside
# strings (a model that emits a newline there produces unparseable output).
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _strict_strings(gbnf: str) -> str:
    return gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)


def completion_kwargs(params: ChatParams, grammar: LlamaGrammar | None) -> dict[str, Any]:
    """Keyword arguments for ``Llama.create_chat_completion`` (all but messages and seed)."""
    sampling = params.sampling
    return {
        "stream": True,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "stop": list(sampling.stop),
        "frequency_penalty": sampling.frequency_penalty,
        "presence_penalty": sampling.presence_penalty,
        "repeat_penalty": sampling.repeat_penalty,
        "grammar": grammar,
        "model": params.model,
    }


def choice_seed(params: ChatParams, index: int) -> int:
    """The seed for choice ``index``: distinct per choice, reproducible when the client seeds."""
    if params.sampling.seed is None:
        return secrets.randbits(32)
    return (params.sampling.seed + index) % 2**32


def embed_texts(embedder: Llama, texts: Sequence[str]) -> tuple[list[list[float]], int]:
    """Normalised vectors for ``texts`` and the number of tokens they took."""
    limit = int(embedder.n_batch)
    for index, text in enumerate(texts):
        count = len(embedder.tokenize(text.encode("utf-8")))
        if count > limit:
            raise InvalidRequest(
                f"input[{index}]: {count} tokens exceed the embedding context of {limit} tokens",
                param="input",
                code="context_length_exceeded",
            )
    vectors, tokens = embedder.embed(list(texts), normalize=True, truncate=False, return_count=True)
    return [list(vector) for vector in vectors], int(tokens)


def detokenize(llama: Llama, tokens: Sequence[int], index: int) -> str:
    """Text for a token-array input; ids outside the vocabulary are a client error."""
    n_vocab = int(llama.n_vocab())
    for token in tokens:
        if token >= n_vocab:
            raise InvalidRequest(
                f"input[{index}]: token {token} is outside the vocabulary (size {n_vocab})",
                param="input",
            )
    return bytes(llama.detokenize(list(tokens))).decode("utf-8", errors="replace")
