"""The ``guardrails`` section: named policies of guards, and what each policy is attached to.

A call gets the policy of its key, else of its project, else of its deployment, else
``default`` (``off`` anywhere means no guards). Each guard's ``settings`` are checked by its
kind when the config is built (``guardrails.policies.NAME.guards[N].settings``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GuardPhase = Literal["input", "output", "tool_input", "tool_output"]
GuardAction = Literal["block", "redact", "flag"]
POLICY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuardConfig(_Strict):
    """One guard (see docs/guardrails.md). ``kind``: pii, deny, max_size, prompt_injection,
    language, moderation, topics, json_schema, or a ``modelyard.guards`` plugin; ``phases``:
    where it runs (input: the prompt; output: the answer; tool_input: the tool calls the model
    asks for; tool_output: tool results sent back); ``action``: block the call, redact what it
    finds, or flag (record the verdict only)."""

    kind: str = Field(min_length=1, max_length=64)
    name: str | None = Field(None, pattern=POLICY_NAME, description="default: the kind")
    phases: list[GuardPhase] = Field(default=["input"], min_length=1)
    action: GuardAction = "block"
    settings: dict[str, Any] = Field(default_factory=dict)
    window: int = Field(
        128,
        ge=16,
        le=4096,
        description="characters a streamed answer is held back for this guard: the longest "
        "text one finding can span",
    )


class PolicyConfig(_Strict):
    """Guards in the order they run. ``reversible``: input redactions are put back in the
    answer to the same caller (the upstream never sees them; the client sees its own data)."""

    guards: list[GuardConfig] = Field(min_length=1)
    reversible: bool = False


class GuardrailsConfig(_Strict):
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)
    default: str | None = Field(None, description="the policy of calls with no attachment")
    deployments: dict[str, str] = Field(default_factory=dict, description="deployment: policy")
    projects: dict[str, str] = Field(default_factory=dict, description="project id: policy")
    keys: dict[str, str] = Field(default_factory=dict, description="key id: policy")

    @model_validator(mode="after")
    def _known_policies(self) -> GuardrailsConfig:
        known = set(self.policies) | {"off"}
        for where, table in (
            ("deployments", self.deployments),
            ("projects", self.projects),
            ("keys", self.keys),
            ("default", {"": self.default} if self.default else {}),
        ):
            for subject, policy in table.items():
                if policy not in known:
                    path = f"{where}.{subject}" if subject else where
                    raise ValueError(
                        f"{path}: no policy {policy!r}; known: {', '.join(sorted(known))}"
                    )
        if "off" in self.policies:
            raise ValueError("policies.off: 'off' is reserved (it means no guards)")
        return self
