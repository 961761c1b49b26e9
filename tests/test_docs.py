"""README stays true: every command and flag is documented, the example config loads, and the
two first-screen commands are the ones the repository runs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mediatool.cli import main
from mediatool.config import load_settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(main, click.Group)
    return sorted(main.commands.items())


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_command_and_flag_is_in_the_readme(name: str, command: click.Command) -> None:
    assert f"mediatool {name}" in README
    flags = [opt for p in command.params for opt in p.opts if opt.startswith("--")]
    missing = [flag for flag in flags if flag not in ("--help",) and flag not in README]
    assert not missing, f"mediatool {name}: flags not in README.md: {missing}"


def test_first_screen_gives_the_demo_and_the_check_command() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["bash examples/demo.sh", "scripts/check"]
    assert (REPO / "examples" / "demo.sh").is_file()
    assert "scripts/check" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_example_config_in_the_readme_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.DOTALL)
    assert block is not None
    config = tmp_path / "mediatool.toml"
    config.write_text(block.group(1), encoding="utf-8")
    settings = load_settings(config)
    assert settings.images.phash_threshold == 10
    assert settings.proxy_rules[0].name == "my-cdn"
    assert settings.fetch.headers["img.example.com"]["Referer"] == "https://example.com/"
    assert "gallery" in settings.discover.frontmatter_keys


def test_readme_exit_codes_match_the_error_tree() -> None:
    from mediatool import errors

    for code in (errors.EXIT_OK, errors.EXIT_FAILURES, errors.EXIT_USAGE, errors.EXIT_FATAL):
        assert re.search(rf"^\| {code} \|", README, re.MULTILINE), f"exit code {code} undocumented"
