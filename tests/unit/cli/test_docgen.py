"""The generated docs: rendered from the code, spliced between markers, and caught when stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from modelyard.cli import docgen
from modelyard.cli.main import HANDLERS
from modelyard.config.schema import Settings


def _block(text: str) -> docgen.Block:
    return docgen.Block("page.md", "demo", lambda: text)


def test_a_block_replaces_only_what_is_between_its_markers(tmp_path: Path):
    page = tmp_path / "page.md"
    start, end = docgen._markers("demo")
    page.write_text(f"# Title\n\nprose before\n{start}stale\n{end}prose after\n")
    assert docgen.run(tmp_path, check=False, blocks=[_block("fresh\n")]) == 0
    assert page.read_text() == f"# Title\n\nprose before\n{start}\nfresh\n\n{end}prose after\n"
    assert docgen.run(tmp_path, check=True, blocks=[_block("fresh\n")]) == 0


def test_check_fails_with_a_diff_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    page = tmp_path / "page.md"
    start, end = docgen._markers("demo")
    page.write_text(f"{start}\nold\n\n{end}")
    assert docgen.run(tmp_path, check=True, blocks=[_block("new\n")]) == 1
    err = capsys.readouterr().err
    assert "-old" in err and "+new" in err and "make docs" in err
    assert page.read_text() == f"{start}\nold\n\n{end}"


def test_a_page_without_its_markers_is_refused(tmp_path: Path):
    (tmp_path / "page.md").write_text("no markers here\n")
    with pytest.raises(ValueError, match="generated:demo"):
        docgen.run(tmp_path, check=True, blocks=[_block("x\n")])


def test_the_cli_reference_covers_every_command_and_flag():
    text = docgen.render_cli()
    for command in HANDLERS:
        assert f"### `modelyard {command}`" in text
    assert "### `modelyard keys create`" in text
    assert "`--budget-usd-month USD`" in text
    assert "--budget-usd`" not in text  # the deprecated alias stays hidden
    assert "| `--limit N` | `20` | the newest N runs |" in text


def test_the_config_reference_covers_every_key_of_the_schema():
    text = docgen.render_config()
    for name in Settings.model_fields:
        assert f"| `{name}` |" in text, name
    assert "### `deployments.<name>.targets[]`" in text
    assert "| `attempts` | integer | `3` | ≥ 1, ≤ 10 |" in text
    assert "| `api_key` | secret (literal, `env::NAME`, `file::PATH`) or null | unset |  |" in text


def test_the_schema_file_is_the_settings_schema_and_accepts_secrets_as_strings():
    schema = json.loads(docgen.render_schema_file())
    assert schema["additionalProperties"] is False
    api_key = schema["$defs"]["ProviderConfig"]["properties"]["api_key"]
    secret = next(kind for kind in api_key["anyOf"] if kind.get("format") == "secret")
    assert secret["type"] == "string"


class _Azure(BaseModel):
    """Azure's options."""

    type: Literal["azure_openai"]
    api_version: str = "2024-10-21"


class _Bedrock(BaseModel):
    type: Literal["bedrock"]
    region: str | None = None


class _Retry(BaseModel):
    attempts: int = Field(3, ge=1)


class _Plain(BaseModel):
    limit: int = 1


class _Root(BaseModel):
    providers: dict[str, Annotated[_Azure | _Bedrock, Field(discriminator="type")]] = {}
    policy: _Retry | _Plain | None = None


def test_unions_of_sections_get_one_labelled_table_each():
    """Typed provider options are on their way into the schema: each variant must show up."""
    text = docgen.render_reference(_Root.model_json_schema())
    assert "### `providers.<name>` (type: azure_openai)" in text
    assert "### `providers.<name>` (type: bedrock)" in text
    assert "Azure's options." in text
    assert "| `type` | `azure_openai` | required |  |" in text
    assert '| `api_version` | string | `"2024-10-21"` |  |' in text
    assert "[type: bedrock](#providersname-type-bedrock)" in text
    assert "### `policy` (_Retry)" in text and "### `policy` (_Plain)" in text
    assert "| `attempts` | integer | `3` | ≥ 1 |" in text
