"""The generated parts of ``docs/``: ``python -m modelyard.cli.docgen [--check]`` (``make docs``).

The CLI reference is rendered from the argparse parser and the configuration reference from the
config's JSON schema (``Settings.model_json_schema()``), so neither can drift from the code:
``make lint`` runs ``--check``, which fails and prints a diff when a page differs from what
this module renders. A generated block sits between ``<!-- generated:NAME -->`` and
``<!-- end generated:NAME -->`` in a hand-written page; the prose around it is left alone.
Rendering depends on nothing but the code (no terminal width, no Python version's help
layout), so every machine renders the same bytes.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.cli.parser import build_parser
from modelyard.config.schema import Settings

USAGE_WIDTH = 96


@dataclass(frozen=True)
class Block:
    """A generated block of a page (``name`` set), or a whole generated file (``name`` None)."""

    path: str
    name: str | None
    render: Callable[[], str]


# --- the CLI reference -------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _shown(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        and a.dest != "help"
        and not isinstance(a, argparse._SubParsersAction)
    ]


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest if not action.option_strings else action.dest.upper()


def _usage_part(action: argparse.Action) -> str:
    if not action.option_strings:
        text = _metavar(action)
        return f"[{text}]" if action.nargs == "?" else text
    flag = max(action.option_strings, key=len)
    text = flag if action.nargs == 0 else f"{flag} {_metavar(action)}"
    return text if action.required else f"[{text}]"


def _usage(command: str, parser: argparse.ArgumentParser, has_sub: bool) -> str:
    parts = [_usage_part(a) for a in _shown(parser)]
    if has_sub:
        parts.append("SUBCOMMAND ...")
    lines, line = [], command
    for part in parts:
        if len(line) + 1 + len(part) > USAGE_WIDTH:
            lines.append(line)
            line = " " * (command.index(" ") + 1 if " " in command else 4) + part
        else:
            line = f"{line} {part}"
    lines.append(line)
    return "\n".join(lines)


def _default(action: argparse.Action) -> str:
    if action.required and action.option_strings:
        return "required"
    if action.default in (None, False, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _command_section(command: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    subs = _subcommands(parser)
    out = [f"### `{command}`", ""]
    if summary:
        out += [summary[0].upper() + summary[1:] + ".", ""]
    out += ["```", _usage(command, parser, bool(subs)), "```", ""]
    shown = _shown(parser)
    if shown:
        out += ["| argument | default | meaning |", "|---|---|---|"]
        for action in shown:
            names = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{_metavar(action)}`"
            if action.option_strings and action.nargs != 0:
                names = names[:-1] + f" {_metavar(action)}`"
            out.append(f"| {names} | {_default(action)} | {_cell(action.help or '')} |")
        out.append("")
    if subs:
        out += ["| subcommand | what |", "|---|---|"]
        out += [f"| `{command} {name}` | {_cell(text)} |" for name, text, _ in subs]
        out.append("")
    return out


def _walk_commands(
    prefix: str, parser: argparse.ArgumentParser
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for name, text, sub in _subcommands(parser):
        yield f"{prefix} {name}", text, sub
        yield from _walk_commands(f"{prefix} {name}", sub)


def render_cli() -> str:
    parser = build_parser()
    out = ["| command | what |", "|---|---|"]
    out += [
        f"| [`modelyard {n}`](#modelyard-{n}) | {_cell(t)} |" for n, t, _ in _subcommands(parser)
    ]
    out.append("")
    for command, text, sub in _walk_commands("modelyard", parser):
        out += _command_section(command, text, sub)
    return "\n".join(out).rstrip("\n") + "\n"


# --- the configuration reference ---------------------------------------------------------


def config_schema() -> dict[str, Any]:
    """The JSON schema of ``modelyard.yaml`` (validation mode: what a file may contain)."""
    found: dict[str, Any] = Settings.model_json_schema()
    found["title"] = "modelyard.yaml"
    return found


def render_schema_file() -> str:
    return json.dumps(config_schema(), indent=2, sort_keys=False) + "\n"


@dataclass(frozen=True)
class _Field:
    kind: str  # a type for the table
    refs: list[tuple[str, str]]  # ($defs name, label) of the section(s) the value may be
    suffix: str  # how the path continues into those sections: "", ".<name>" or "[]"
    nullable: bool


def _def_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _refs(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The section(s) a value may be: one ``$ref``, or a union of them, each labelled by its
    discriminator value (``type: azure_openai``) or else by its model's name."""
    if "$ref" in schema:
        return [(_def_name(schema["$ref"]), "")]
    union = [o for o in schema.get("oneOf") or schema.get("anyOf") or [] if "$ref" in o]
    discriminator = schema.get("discriminator") or {}
    by_model = {_def_name(v): k for k, v in (discriminator.get("mapping") or {}).items()}
    prop = discriminator.get("propertyName", "")
    labelled = []
    for option in union:
        name = _def_name(option["$ref"])
        labelled.append((name, f"{prop}: {by_model[name]}" if name in by_model else name))
    return labelled


def _field(schema: dict[str, Any]) -> _Field:
    options = schema.get("anyOf", [schema])
    real = [o for o in options if o.get("type") != "null"]
    nullable = len(real) < len(options)
    value = real[0] if len(real) == 1 else {k: v for k, v in schema.items() if k != "default"}
    if refs := _refs(value):
        return _Field("section" if len(refs) == 1 else "one of", refs, "", nullable)
    container = value.get("type")
    item = value.get("additionalProperties") if container == "object" else value.get("items")
    if isinstance(item, dict) and (refs := _refs(item)):
        suffix = ".<name>" if container == "object" else "[]"
        kind = "map of name to section" if suffix == ".<name>" else "list of sections"
        return _Field(kind if len(refs) == 1 else f"{kind}s, one of", refs, suffix, nullable)
    kind = _kind(value) if len(real) == 1 else " or ".join(_kind(o) for o in real)
    return _Field(kind, [], "", nullable)


def _kind(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("format") == "path":
        return "file path"
    if schema.get("format") == "secret":
        return "secret (literal, `env::NAME`, `file::PATH`)"
    kind = str(schema.get("type", "any"))
    if kind == "object":
        values = schema.get("additionalProperties")
        return f"map of name to {_kind(values)}" if isinstance(values, dict) else "map"
    if kind == "array":
        return f"list of {_kind(schema.get('items', {}))}"
    if "anyOf" in schema:
        return " or ".join(_kind(o) for o in schema["anyOf"])
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(kind, kind)


_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} item(s)"),
    ("minLength", "at least {} character(s)"),
    ("pattern", "matches `{}`"),
)


def _constraints(schema: dict[str, Any]) -> str:
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    found = [text.format(o[key]) for o in options for key, text in _BOUNDS if key in o]
    found += [text.format(schema[key]) for key, text in _BOUNDS if key in schema]
    return ", ".join(dict.fromkeys(found))


def _default_text(name: str, schema: dict[str, Any], required: set[str]) -> str:
    if name in required:
        return "required"
    if "default" not in schema:
        return "empty" if schema.get("type") in ("object", "array") else ""
    value = schema["default"]
    if value is None:
        return "unset"
    if isinstance(value, dict | list):
        return "empty" if not value else "see below"
    return f"`{json.dumps(value)}`"


def _prose(text: str) -> str:
    return " ".join(text.replace("``", "`").split())


def _heading(path: str, label: str) -> str:
    text = f"`{path}`" if path else "top level"
    return f"{text} ({label})" if label else text


def _section(
    path: str, label: str, model: dict[str, Any]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The table of one section, and the sections nested in it (path, label, $defs name)."""
    out = [f"### {_heading(path, label)}", ""]
    if model.get("description"):
        out += [_prose(model["description"]), ""]
    out += ["| key | type | default | constraints |", "|---|---|---|---|"]
    nested: list[tuple[str, str, str]] = []
    required = set(model.get("required", []))
    for name, schema in model.get("properties", {}).items():
        field = _field(schema)
        key = f"{path}.{name}" if path else name
        kind = field.kind
        if field.refs:
            many = len(field.refs) > 1
            links = []
            for ref, ref_label in field.refs:
                shown = ref_label if many else ""
                nested.append((key + field.suffix, shown, ref))
                anchor = _anchor(_heading(key + field.suffix, shown))
                links.append(f"[{ref_label if many else kind}](#{anchor})")
            kind = f"{kind} {', '.join(links)}" if many else links[0]
        if field.nullable:
            kind += " or null"
        default = _default_text(name, schema, required)
        out.append(f"| `{name}` | {kind} | {default} | {_constraints(schema)} |")
    out.append("")
    return out, nested


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def render_reference(schema: dict[str, Any]) -> str:
    """One table per section of ``schema``, depth first, in the order the keys are declared."""
    defs: dict[str, Any] = schema.get("$defs", {})
    out: list[str] = []
    queue: list[tuple[str, str, dict[str, Any]]] = [("", "", schema)]
    while queue:
        path, label, model = queue.pop(0)
        lines, nested = _section(path, label, model)
        out += lines
        queue[0:0] = [(p, lab, defs[name]) for p, lab, name in nested]
    return "\n".join(out).rstrip("\n") + "\n"


def render_config() -> str:
    return render_reference(config_schema())


# --- pages and the check -----------------------------------------------------------------

BLOCKS = (
    Block("docs/cli.md", "cli", render_cli),
    Block("docs/configuration.md", "config", render_config),
    Block("docs/modelyard.schema.json", None, render_schema_file),
)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} (make docs) -->\n", f"<!-- end generated:{name} -->\n"


def rendered(block: Block, current: str) -> str:
    """The page ``current`` with ``block`` rendered into it."""
    if block.name is None:
        return block.render()
    start, end = _markers(block.name)
    if current.count(start) != 1 or current.count(end) != 1:
        raise ValueError(f"{block.path}: needs one {start.strip()} and one {end.strip()}")
    head, rest = current.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{block.render()}\n{end}{tail}"


def run(root: Path, check: bool, blocks: Sequence[Block] = BLOCKS) -> int:
    stale = 0
    for block in blocks:
        path = root / block.path
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        fresh = rendered(block, current)
        if fresh == current:
            continue
        if check:
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(True), fresh.splitlines(True), block.path, "generated"
            )
            sys.stderr.writelines(diff)
        else:
            path.write_text(fresh, encoding="utf-8")
            print(f"wrote {block.path}")
    if stale:
        print(f"{stale} generated doc(s) are stale: run 'make docs'", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelyard.cli.docgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a page is stale")
    parser.add_argument("--root", default=".", help="the repository (default: here)")
    args = parser.parse_args(argv)
    return run(Path(args.root), args.check)


if __name__ == "__main__":
    sys.exit(main())
