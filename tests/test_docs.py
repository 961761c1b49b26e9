"""README and docs/ stay true: every command and flag is documented, every command line they
show names real commands and flags, the example config loads, and the first screen gives the
install and the two commands the repository runs."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mediatool.cli import main
from mediatool.config import load_settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = {
    path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
    for path in sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *REPO.glob("docs/*.md")])
    if path.is_file()
}
FIRST_SCREEN = "\n".join(README.splitlines()[:40])
FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+)`")
# A command line in code: `mediatool <command> ...` (or `$ mediatool ...`), up to any comment.
COMMAND_LINE = re.compile(r"^(?:\$ )?mediatool ([a-z][a-z-]*)([^#\n]*)", re.MULTILINE)


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(main, click.Group)
    return sorted(main.commands.items())


def _flags(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}


def _code(text: str) -> list[str]:
    """The fenced blocks and the inline code spans of a Markdown text."""
    return FENCED.findall(text) + INLINE.findall(FENCED.sub("", text))


def _prose(text: str) -> str:
    return INLINE.sub("", FENCED.sub("", text))


def _sh_blocks(text: str) -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    return [[line.split("#")[0].strip() for line in block.splitlines()] for block in blocks]


@pytest.mark.parametrize(("name", "command"), _commands())
def test_every_command_and_flag_is_in_the_readme(name: str, command: click.Command) -> None:
    assert f"mediatool {name}" in README
    flags = [opt for p in command.params for opt in p.opts if opt.startswith("--")]
    missing = [flag for flag in flags if flag not in ("--help",) and flag not in README]
    assert not missing, f"mediatool {name}: flags not in README.md: {missing}"


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_command_line_in_the_docs_is_a_real_command_with_real_flags(doc: str) -> None:
    commands = dict(_commands())
    found = [line for code in _code(DOCS[doc]) for line in COMMAND_LINE.findall(code)]
    assert found or doc not in ("README.md", "docs/how-it-works.md"), f"{doc}: no command lines"
    for name, rest in found:
        assert name in commands, f"{doc}: `mediatool {name}` is not a command"
        unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest)) - _flags(commands[name])
        assert not unknown, f"{doc}: `mediatool {name}` has no {sorted(unknown)}"


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_file_the_docs_link_or_run_exists(doc: str) -> None:
    folder = (REPO / doc).parent
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _prose(DOCS[doc]))
    files = [link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:|//", link)]  # not URLs
    missing = [link for link in files if not (folder / link).exists()]
    scripts = re.findall(r"(?<![\w/])((?:bench|scripts|examples)/[\w./-]+\.(?:py|sh))", DOCS[doc])
    missing += [script for script in scripts if not (REPO / script).is_file()]
    assert not missing, f"{doc}: names files that do not exist: {missing}"


def test_first_screen_gives_the_install_the_demo_and_the_check_command() -> None:
    blocks = _sh_blocks(FIRST_SCREEN)
    assert ["bash examples/demo.sh", "scripts/check"] in blocks
    install = next(block for block in blocks if "pipx install ." in block)
    assert "pip install ." in install
    assert "source .venv/bin/activate" in FIRST_SCREEN and ".venv/bin/mediatool" in FIRST_SCREEN
    assert (REPO / "examples" / "demo.sh").is_file()
    assert "scripts/check" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv" in (REPO / "scripts" / "setup").read_text(encoding="utf-8")


def test_example_config_in_the_docs_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOCS["docs/configuration.md"], re.DOTALL)
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
