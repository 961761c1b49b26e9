"""The ready-to-copy CI files: they parse, and every mediatool command they run exists with
the flags it is given (by click's command tree)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from mediatool.cli import main

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"


def _mediatool_commands(script: str) -> list[list[str]]:
    """Each `mediatool ...` command of a shell script, as words."""
    found = []
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||[|;]", line.split(" #")[0]):
            words = shlex.split(part)
            if words and words[0] == "mediatool":
                found.append(words[1:])
    return found


def _assert_real(words: list[str]) -> None:
    name, *rest = words
    assert name in main.commands, f"`mediatool {name}` is not a command"
    command = main.commands[name]
    known = {opt for param in command.params for opt in param.opts}
    for word in rest:
        flag = word.split("=", 1)[0]
        if flag.startswith("--"):
            assert flag in known, f"`mediatool {name}` has no {flag}"
    # click's own parser: an unknown option or one without its value raises here.
    command.make_parser(click.Context(command)).parse_args(list(rest))


def test_the_workflow_parses_and_runs_real_commands_with_real_flags() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["localize"]["steps"]
    scripts = [step["run"] for step in steps if "run" in step]
    commands = [words for script in scripts for words in _mediatool_commands(script)]
    for words in commands:
        _assert_real(words)
    names = [(words[0], *(w for w in words if w.startswith("--"))) for words in commands]
    assert ("fetch", "--time-budget", "--progress-every") in names
    assert ("rewrite", "--check") in names
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("actions/cache/restore") for u in uses)
    assert any(u.startswith("actions/cache/save") for u in uses)
    assert any("git commit" in script and "git push" in script for script in scripts)
    assert steps[-1]["run"].startswith("mediatool rewrite") and "--check" in steps[-1]["run"]


def test_the_time_budget_in_the_workflow_leaves_a_margin_under_the_job_limit() -> None:
    from mediatool.config import parse_duration

    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["localize"]
    fetch = next(s["run"] for s in job["steps"] if "run" in s and "mediatool fetch" in s["run"])
    words = shlex.split(fetch)
    budget = parse_duration(words[words.index("--time-budget") + 1])
    assert budget < job["timeout-minutes"] * 60


def test_the_pre_commit_hook_runs_the_gate() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "mediatool-check"
    words = shlex.split(hook["entry"])
    assert words[0] == "mediatool"
    _assert_real(words[1:])
    assert "--check" in words
    assert re.search(hook["files"], "source/_posts/a.md")


def test_the_dockerfile_installs_this_package_and_runs_mediatool() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert 'ENTRYPOINT ["mediatool"]' in lines
    runs = [line for line in lines if line.lstrip("# ").startswith("docker run")]
    for run in runs:
        words = shlex.split(run.lstrip("# "))
        _assert_real(words[words.index("mediatool") + 1 :])


MATRIX = REPO / "examples" / "ci" / "github-actions-matrix.yml"


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict[str, Any]) -> list[str]:
    return [step.get("uses", "") for step in job["steps"]]


def test_the_matrix_workflow_fetches_shards_then_merges_groups_and_rewrites() -> None:
    from mediatool.config import parse_duration
    from mediatool.partition import Shard

    workflow = yaml.safe_load(MATRIX.read_text())
    fetch, merge = workflow["jobs"]["fetch"], workflow["jobs"]["merge"]
    shards = fetch["strategy"]["matrix"]["shard"]
    assert fetch["strategy"]["fail-fast"] is False
    (fetching,) = [run for run in _runs(fetch) if "mediatool fetch" in run]
    for shard in shards:  # --shard I/N names a real shard of the matrix, for each I
        words = shlex.split(fetching.replace("${{ matrix.shard }}", str(shard)))
        assert Shard.parse(words[words.index("--shard") + 1]) == Shard(shard - 1, len(shards))
        _assert_real(words[1:])
    budget = parse_duration(words[words.index("--time-budget") + 1])
    assert budget < fetch["timeout-minutes"] * 60
    assert any(u.startswith("actions/upload-artifact") for u in _uses(fetch))
    assert any(u.startswith("actions/download-artifact") for u in _uses(merge))
    assert merge["needs"] == "fetch"
    commands = [words for run in _runs(merge) for words in _mediatool_commands(run)]
    for words in commands:
        _assert_real(words)
    order = [words[0] for words in commands]
    assert order[:3] == ["merge", "dedup", "rewrite"]
    assert commands[-1][:1] == ["rewrite"] and "--check" in commands[-1]
    merging = next(words for words in commands if words[0] == "merge")
    assert "--from-cache" in next(run for run in _runs(merge) if "mediatool merge" in run)
    assert "--cache" in merging
