"""The command line's shape: every command dispatched, one spelling and help per flag, and exit
code 2 for every usage or config error. In process; nothing is served or loaded."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.cli import flags
from modelyard.cli.main import HANDLERS, handler, main
from modelyard.cli.parser import CATALOG_FLAGS, build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for name, child in _subparsers(parser).items():
        yield from _walk(child, (*path, name))


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help"]


@pytest.fixture
def bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "bad.yaml"
    path.write_text("deployments:\n  chat:\n    targets: [{provider: grokk, model: m}]\n")
    return str(path)


def test_every_command_has_a_handler_and_every_handler_a_command():
    commands = set(_subparsers(build_parser()))
    assert commands == set(HANDLERS)
    for command in commands:
        assert callable(handler(command))


def test_every_option_and_argument_has_help():
    missing = [
        f"modelyard {' '.join(path)} {action.option_strings or action.dest}"
        for path, parser in _walk(build_parser())
        for action in parser._actions
        if action.dest != "help"
        and not isinstance(action, argparse._SubParsersAction)
        and not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--json", flags.JSON_HELP),
        ("--api-key", flags.API_KEY_HELP),
        ("--url", flags.URL_HELP),
        ("--pid-file", flags.PID_FILE_HELP),
        ("--budget-usd-month", "monthly budget in dollars (up to 6 decimals)"),
    ],
)
def test_a_shared_flag_has_one_help_text(flag: str, expected: str):
    found = {
        " ".join(path): action.help
        for path, parser in _walk(build_parser())
        for action in _options(parser)
        if flag in action.option_strings
    }
    assert found, f"no command takes {flag}"
    assert set(found.values()) == {expected}, found


def test_projects_and_keys_spell_the_monthly_budget_alike():
    parsed = build_parser().parse_args
    project = parsed(["projects", "create", "p", "--budget-usd-month", "5"])
    key = parsed(["keys", "create", "--project", "p", "--budget-usd-month", "5"])
    assert project.budget_month == key.budget_month == "5"


def test_the_old_key_budget_flag_still_works_hidden_and_noted(
    capsys: pytest.CaptureFixture[str],
):
    parser = build_parser()
    args = parser.parse_args(["keys", "create", "--project", "p", "--budget-usd", "7.5"])
    assert args.budget_month == "7.5"
    assert "--budget-usd is deprecated; use --budget-usd-month" in capsys.readouterr().err
    keys_create = _subparsers(_subparsers(parser)["keys"])["create"]
    assert "--budget-usd " not in keys_create.format_help() + " "
    assert "--budget-usd-month" in keys_create.format_help()


@pytest.mark.parametrize("name", CATALOG_FLAGS)
def test_a_catalog_flag_without_catalog_is_a_usage_error(
    name: str, capsys: pytest.CaptureFixture[str]
):
    flag = "--" + name.replace("_", "-")
    value = {"capability": "tools", "max_input_price": "1", "min_context": "1"}.get(name, "x")
    assert main(["models", "--url", "http://127.0.0.1:9", flag, value]) == flags.USAGE
    assert f"{flag} filters the catalog: add --catalog" in capsys.readouterr().err


def test_catalog_with_a_config_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["models", "--catalog", "--config", "x.yaml"]) == flags.USAGE
    assert "--catalog" in capsys.readouterr().err


def test_usage_limit_needs_records(capsys: pytest.CaptureFixture[str]):
    assert main(["usage", "--limit", "5"]) == flags.USAGE
    assert "add --records" in capsys.readouterr().err


def test_an_unknown_flag_exits_2():
    with pytest.raises(SystemExit) as exited:
        main(["keys", "list", "--no-such-flag"])
    assert exited.value.code == flags.USAGE


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "check"],
        ["models"],
        ["deployments", "history", "chat"],
        ["projects", "list"],
        ["usage"],
        ["eval", "list"],
    ],
)
def test_an_invalid_config_exits_2_naming_the_path(
    argv: list[str], bad_config: str, capsys: pytest.CaptureFixture[str]
):
    assert main([*argv, "--config", bad_config]) == flags.USAGE
    assert "deployments.chat.targets[0].provider: unknown provider 'grokk'" in (
        capsys.readouterr().err
    )


def test_every_eval_subcommand_has_a_handler():
    from modelyard.cli.eval import _SUBCOMMANDS

    assert set(_SUBCOMMANDS) == set(_subparsers(_subparsers(build_parser())["eval"]))


def test_eval_datasets_and_prompts_run_offline(capsys: pytest.CaptureFixture[str]):
    assert main(["eval", "datasets"]) == flags.OK
    assert "smoke" in capsys.readouterr().out
    assert main(["eval", "prompts"]) == flags.OK
    assert "--- system ---" in capsys.readouterr().out
