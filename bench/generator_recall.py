"""Score discovery on the real-posts corpus of site generators (tests/data/generators).

    .venv/bin/python bench/generator_recall.py [--corpus DIR] [--misses] [--json]

Runs discover (`mediatool.discover.read_post`) and resolve (`mediatool.resolve.resolve`) with
the default settings, as `mediatool scan` does for a new user, over every post listed in
SOURCES.tsv, and compares the references found with the hand-written expected references in
expected/<post>.json (see tests/data/generators/README.md for the conventions).

Matching: an expected reference (line, url) is matched by a found reference whose raw text or
decoded URL is the expected url (for a template expression such as
`{{ "/x.png" | relative_url }}` the path inside it counts too, and the other way round). Three
passes: same line and same attribute, then same line, then the nearest line within
LINE_TOLERANCE (multi-line shortcodes and tags); every found reference matches at most one
expected one. `data:` URLs are not references.

Figures printed: recall and precision per family, recall per expected context, precision per
found context; remote recall, precision, origins right (matched remote references whose
resolved origin is the expected origin), local recall, and local recall in generator syntax
(shortcodes, tag plugins, Liquid, front matter, components: every context but plain Markdown and
plain HTML attributes with a literal URL).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediatool.config import load_settings
from mediatool.discover import read_post
from mediatool.errors import PostError
from mediatool.models import RefKind
from mediatool.resolve import compile_rules, resolve

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "generators"
LINE_TOLERANCE = 6
PLAIN_CONTEXTS = frozenset({"markdown", "markdown-link", "markdown-ref"})
HTML_TAGS = frozenset(
    {
        "a",
        "audio",
        "embed",
        "figure",
        "iframe",
        "image",
        "img",
        "link",
        "meta",
        "object",
        "picture",
        "source",
        "track",
        "video",
        "div",
        "span",
        "p",
        "noscript",
        "svg",
    }
)


@dataclass(frozen=True, slots=True)
class Expected:
    post: str
    family: str
    line: int
    url: str
    kind: str
    media: str
    origin: str | None
    context: str

    @property
    def generator_syntax(self) -> bool:
        """False for plain Markdown and attributes of plain HTML tags; True for shortcodes, tag
        plugins, includes, front matter, components and anything written through a template."""
        if "+" in self.context or "{{" in self.url or "{%" in self.url:
            return True
        if self.context in PLAIN_CONTEXTS:
            return False
        tag, at, _ = self.context.partition("@")
        return not (at and tag in HTML_TAGS)


@dataclass(frozen=True, slots=True)
class Found:
    post: str
    family: str
    line: int
    raw: str
    source_url: str
    kind: str
    origin: str | None
    context: str


@dataclass(slots=True)
class Score:
    expected: list[Expected] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    matches: list[tuple[Expected, Found]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def missed(self) -> list[Expected]:
        taken = {id(exp) for exp, _ in self.matches}
        return [exp for exp in self.expected if id(exp) not in taken]

    @property
    def extra(self) -> list[Found]:
        taken = {id(got) for _, got in self.matches}
        return [got for got in self.found if id(got) not in taken]


def ratio(part: int, whole: int) -> float:
    """part / whole, 1.0 for an empty whole (nothing to find, nothing wrong)."""
    return part / whole if whole else 1.0


def read_sources(corpus: Path) -> list[dict[str, str]]:
    with (corpus / "SOURCES.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_expected(corpus: Path, post: str, family: str) -> list[Expected]:
    rows = json.loads((corpus / "expected" / f"{post}.json").read_text(encoding="utf-8"))
    return [
        Expected(
            post=post,
            family=family,
            line=int(row["line"]),
            url=str(row["url"]),
            kind=str(row["kind"]),
            media=str(row["media"]),
            origin=row.get("origin"),
            context=str(row["context"]),
        )
        for row in rows
    ]


def scan_post(corpus: Path, post: str, family: str) -> list[Found]:
    """Every non-data reference discover finds in the post, resolved like `mediatool scan`."""
    settings = load_settings(None)
    rules = compile_rules(settings.proxy_rules)
    scan = read_post(corpus / post, settings.discover)
    found = []
    for ref in scan.references:
        if ref.kind is RefKind.DATA:
            continue
        origin = resolve(ref.source_url, rules).origin_url if ref.kind is RefKind.REMOTE else None
        found.append(
            Found(
                post, family, ref.line, ref.raw, ref.source_url, ref.kind.value, origin, ref.context
            )
        )
    return found


def same_url(expected: Expected, found: Found) -> bool:
    if expected.url in (found.raw, found.source_url):
        return True
    if "{{" in expected.url or "{%" in expected.url:
        return found.raw in expected.url or expected.url in found.raw
    return False


def same_place(expected: Expected, found: Found) -> bool:
    """The found context names the same place: equal, or the same attribute (`img@srcset`)."""
    if expected.context == found.context:
        return True
    attribute = expected.context.partition("@")[2].partition("+")[0].partition("(")[0]
    return bool(attribute) and found.context.partition("@")[2] == attribute


def match_post(
    expected: Sequence[Expected], found: Sequence[Found]
) -> list[tuple[Expected, Found]]:
    """Pair expected with found references having the same url, in three passes: same line and
    same place, then same line, then the nearest line within LINE_TOLERANCE."""
    pairs: list[tuple[Expected, Found]] = []
    free_expected = sorted(expected, key=lambda e: e.line)
    free_found = list(found)
    passes = (
        lambda e, f: f.line == e.line and same_place(e, f),
        lambda e, f: f.line == e.line,
        lambda e, f: abs(f.line - e.line) <= LINE_TOLERANCE,
    )
    for fits in passes:
        for exp in list(free_expected):
            candidates = [got for got in free_found if same_url(exp, got) and fits(exp, got)]
            if candidates:
                best = min(candidates, key=lambda got: (abs(got.line - exp.line), got.line))
                free_found.remove(best)
                free_expected.remove(exp)
                pairs.append((exp, best))
    return pairs


def score_corpus(corpus: Path = CORPUS) -> Score:
    score = Score()
    for source in read_sources(corpus):
        post, family = source["file"], source["family"]
        expected = read_expected(corpus, post, family)
        try:
            found = scan_post(corpus, post, family)
        except PostError as exc:
            score.failures.append(f"{post}: {exc}")
            found = []
        score.expected.extend(expected)
        score.found.extend(found)
        score.matches.extend(match_post(expected, found))
    return score


def headline(score: Score) -> dict[str, float]:
    """The figures issue 9 sets targets for (and a few more)."""
    remote = [e for e in score.expected if e.kind == "remote"]
    local = [e for e in score.expected if e.kind == "local"]
    local_generator = [e for e in local if e.generator_syntax]
    matched = {id(exp) for exp, _ in score.matches}
    remote_pairs = [(e, f) for e, f in score.matches if e.kind == "remote"]
    return {
        "expected": len(score.expected),
        "found": len(score.found),
        "matched": len(score.matches),
        "recall": ratio(len(score.matches), len(score.expected)),
        "precision": ratio(len(score.matches), len(score.found)),
        "remote_recall": ratio(sum(id(e) in matched for e in remote), len(remote)),
        "origins_right": ratio(
            sum(f.origin == e.origin for e, f in remote_pairs), len(remote_pairs)
        ),
        "local_recall": ratio(sum(id(e) in matched for e in local), len(local)),
        "local_generator_recall": ratio(
            sum(id(e) in matched for e in local_generator), len(local_generator)
        ),
    }


def by_key(expected: Iterable[Expected], matched: set[int], key: str) -> dict[str, tuple[int, int]]:
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for exp in expected:
        row = table[getattr(exp, key)]
        row[0] += id(exp) in matched
        row[1] += 1
    return {name: (hit, total) for name, (hit, total) in sorted(table.items())}


def report(score: Score, misses: bool) -> str:
    matched = {id(exp) for exp, _ in score.matches}
    matched_found = {id(got) for _, got in score.matches}
    lines = [f"{'family':<12} {'expected':>8} {'recall':>7} {'found':>6} {'precision':>9}"]
    for family, (hit, total) in by_key(score.expected, matched, "family").items():
        found = [got for got in score.found if got.family == family]
        right = sum(id(got) in matched_found for got in found)
        lines.append(
            f"{family:<12} {total:>8} {ratio(hit, total):>7.3f} {len(found):>6} "
            f"{ratio(right, len(found)):>9.3f}"
        )
    lines += ["", f"{'expected context':<44} {'found':>5} / {'total':<5} recall"]
    for context, (hit, total) in by_key(score.expected, matched, "context").items():
        lines.append(f"{context:<44} {hit:>5} / {total:<5} {ratio(hit, total):.3f}")
    lines += ["", f"{'found context':<44} {'right':>5} / {'found':<5} precision"]
    found_by_context: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for got in score.found:
        row = found_by_context[got.context]
        row[0] += id(got) in matched_found
        row[1] += 1
    for context, (right, total) in sorted(found_by_context.items()):
        lines.append(f"{context:<44} {right:>5} / {total:<5} {ratio(right, total):.3f}")
    lines.append("")
    for name, value in headline(score).items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{name:<24} {shown}")
    lines += [f"failed: {failure}" for failure in score.failures]
    if misses:
        lines += ["", "missed:"]
        lines += [f"  {e.post}:{e.line} [{e.context}] {e.url}" for e in score.missed]
        lines += ["", "found but not expected:"]
        lines += [f"  {f.post}:{f.line} [{f.context}] {f.raw}" for f in score.extra]
        lines += ["", "wrong origin:"]
        lines += [
            f"  {e.post}:{e.line} {f.origin} (expected {e.origin})"
            for e, f in score.matches
            if e.kind == "remote" and f.origin != e.origin
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--misses", action="store_true", help="list every miss and extra")
    parser.add_argument("--json", action="store_true", help="print the headline figures as JSON")
    args = parser.parse_args(argv)
    score = score_corpus(args.corpus)
    if args.json:
        print(json.dumps(headline(score), indent=2))
    else:
        print(report(score, args.misses))
    if score.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
