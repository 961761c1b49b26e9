"""A synthetic archive shaped like a real one, for benches and tests.

    calibration = calibrate(Path("../shared/corpus/real"))   # count the real corpus
    shape = ArchiveShape.from_calibration(calibration, posts=100_000)
    stats = write_archive(shape, Path("posts"))                # Markdown/HTML posts

`calibrate` reads real posts with mediatool's own discover and resolve, and counts references
per origin host (fitting a Zipf exponent to the ranked counts by maximum likelihood), the proxy
wrappings, the origin schemes, remote references per post and how often a post repeats an URL.
`write_archive` writes posts whose image hosts follow that Zipf law; each reference is
- a boilerplate image (a logo shared by many posts) with probability `boilerplate_share`,
- else a variant (crop, rescale, recompression) of an earlier picture with `variant_share`,
- else a new picture;
wrapped in the proxies the corpus uses, in its proportions (cors.zfour.workers.dev for http
origins, images.weserv.nl / wsrv.nl / weserv over proxy.rifx.online for https, WordPress
Photon for either). The first image is repeated in `thumbnail` and `headimg` as RSSHub does.
Every file name is `origin.generated_path(i, v)`: an `OriginServer(generated=True)` answers
every host with the picture drawn on the fly, so no image is written to disk. The archive
is written one post at a time (memory does not grow with `posts`).
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from mediatool.config import DiscoverSettings
from mediatool.discover import read_post
from mediatool.errors import PostError
from mediatool.models import RefKind
from mediatool.resolve import compile_rules, resolve_reference
from mediatool.testing.origin import generated_path

POSTS_PER_FOLDER = 1000
BOILERPLATE_HOST = "static.sim-boilerplate.test"
# The proxy wrappings, by the rule names resolve gives for them (outermost first).
CORS = ("cors-workers",)
WESERV = ("weserv",)
WESERV_RIFX = ("weserv", "rifx-proxy")
PHOTON = ("wp-photon",)
HTTPS_WRAPPINGS = (WESERV, WESERV_RIFX)
WESERV_HOSTS = ("images.weserv.nl", "wsrv.nl")


@dataclass(frozen=True)
class Calibration:
    """What a real corpus looks like, as counted by `calibrate`."""

    posts: int
    references: int  # remote references
    hosts: tuple[tuple[str, int], ...]  # origin host, references; busiest first
    https_hosts: frozenset[str]  # hosts whose references are mostly https
    exponent: float  # Zipf exponent fitted to the ranked host counts
    refs_per_post: tuple[int, ...]  # remote references of each post
    wrappings: tuple[tuple[tuple[str, ...], int], ...]  # proxy rule names, references
    http_references: int
    repeats: int  # references to an URL already used in the same post
    markdown_share: float  # Markdown `![]()` among body images (the rest: <img src>)
    thumbnail_share: float  # posts whose first image is also in front matter

    def wrap_share(self, rules: tuple[str, ...]) -> float:
        """The share of references of the matching scheme that go through `rules`."""
        count = dict(self.wrappings).get(rules, 0)
        if rules == CORS:
            return count / max(self.http_references, 1)
        if rules == PHOTON:
            return count / max(self.references, 1)
        return count / max(self.references - self.http_references, 1)

    def lines(self) -> list[str]:
        """The calibration, readable."""
        top = ", ".join(f"{host} {count}" for host, count in self.hosts[:8])
        wraps = ", ".join(f"{'+'.join(r) or 'none'} {n}" for r, n in self.wrappings)
        mean = self.references / max(self.posts, 1)
        return [
            f"corpus: {self.posts} posts, {self.references} remote references "
            f"({mean:.2f}/post), {self.repeats} repeats within a post",
            f"hosts: {len(self.hosts)}, Zipf exponent {self.exponent:.2f} (MLE); top: {top}",
            f"proxies: {wraps}; http origins {self.http_references}",
            f"body images: {self.markdown_share:.0%} Markdown; first image in front matter "
            f"in {self.thumbnail_share:.0%} of posts",
        ]


def calibrate(corpus: Path) -> Calibration:
    """Count the real posts below `corpus` (*.md, *.markdown, *.html) with discover and
    resolve."""
    rules = compile_rules(())
    hosts: Counter[str] = Counter()
    https: Counter[str] = Counter()
    wrappings: Counter[tuple[str, ...]] = Counter()
    contexts: Counter[str] = Counter()
    per_post: list[int] = []
    repeats = with_thumbnail = 0
    for path in sorted(p for p in corpus.rglob("*") if p.suffix in (".md", ".markdown", ".html")):
        try:
            scan = read_post(path, DiscoverSettings())
        except PostError:
            continue
        remote = [ref for ref in scan.references if ref.kind is RefKind.REMOTE]
        per_post.append(len(remote))
        with_thumbnail += any(ref.context == "frontmatter:thumbnail" for ref in remote)
        seen: set[str] = set()
        for ref in remote:
            resolution = resolve_reference(ref, rules)
            parts = urlsplit(resolution.origin_url)
            hosts[parts.hostname or ""] += 1
            https[parts.hostname or ""] += parts.scheme == "https"
            wrappings[resolution.rules] += 1
            contexts[ref.context] += 1
            repeats += resolution.origin_url in seen
            seen.add(resolution.origin_url)
    ranked = tuple(hosts.most_common())
    body = contexts["markdown"] + contexts["img@src"]
    return Calibration(
        posts=len(per_post),
        references=sum(per_post),
        hosts=ranked,
        https_hosts=frozenset(h for h, n in hosts.items() if https[h] * 2 > n),
        exponent=fit_zipf([count for _, count in ranked]),
        refs_per_post=tuple(per_post),
        wrappings=tuple(wrappings.most_common()),
        http_references=sum(hosts.values()) - sum(https.values()),
        repeats=repeats,
        markdown_share=contexts["markdown"] / max(body, 1),
        thumbnail_share=with_thumbnail / max(len(per_post), 1),
    )


def fit_zipf(counts: Sequence[int]) -> float:
    """The exponent s of a Zipf law over len(counts) ranks (P(r) ~ r^-s) that makes the ranked
    `counts` most likely (maximum likelihood, searched from 0.01 to 4 by 0.01)."""
    ranked = sorted(counts, reverse=True)
    total = sum(ranked)
    if len(ranked) < 2 or total == 0:
        return 1.0
    log_ranks = [math.log(rank) for rank in range(1, len(ranked) + 1)]
    weighted = sum(c * lr for c, lr in zip(ranked, log_ranks, strict=True))

    def likelihood(s: float) -> float:
        return -s * weighted - total * math.log(sum(math.exp(-s * lr) for lr in log_ranks))

    return max((step / 100 for step in range(1, 401)), key=likelihood)


@dataclass(frozen=True)
class ArchiveShape:
    """What `write_archive` writes. Hosts are ranked, busiest first; `https_hosts` are served
    over https."""

    posts: int = 1000
    hosts: tuple[str, ...] = tuple(f"img{i}.sim.test" for i in range(30))
    https_hosts: frozenset[str] = frozenset()
    exponent: float = 1.0
    refs_per_post: tuple[int, ...] = (5,)  # sampled for each post
    cors_share: float = 0.8  # of http origins
    https_wrap_shares: tuple[float, ...] = (0.3, 0.15)  # per HTTPS_WRAPPINGS
    photon_share: float = 0.1  # of all references
    markdown_share: float = 0.5
    thumbnail_share: float = 0.6
    boilerplate: int = 20  # distinct boilerplate images
    boilerplate_share: float = 0.05
    variant_share: float = 0.1
    variants: int = 3  # variants 1..variants of a picture
    seed: int = 0
    _cum: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_calibration(cls, calibration: Calibration, **changes: object) -> ArchiveShape:
        """The shape of the calibrated corpus; `changes` set other fields (posts, seed...)."""
        shape = cls(
            hosts=tuple(host for host, _ in calibration.hosts),
            https_hosts=calibration.https_hosts,
            exponent=calibration.exponent,
            refs_per_post=calibration.refs_per_post,
            cors_share=calibration.wrap_share(CORS),
            https_wrap_shares=tuple(calibration.wrap_share(w) for w in HTTPS_WRAPPINGS),
            photon_share=calibration.wrap_share(PHOTON),
            markdown_share=calibration.markdown_share,
            thumbnail_share=calibration.thumbnail_share,
        )
        return replace(shape, **changes)  # type: ignore[arg-type]

    def with_hosts(self, count: int) -> ArchiveShape:
        """The same shape over `count` hosts: the calibrated ones, then img<N>.sim.test."""
        extra = tuple(f"img{i}.sim.test" for i in range(max(count - len(self.hosts), 0)))
        return replace(self, hosts=(*self.hosts, *extra)[:count])

    def host_weights(self) -> list[float]:
        """The Zipf share of each host, in rank order."""
        raw = [rank**-self.exponent for rank in range(1, len(self.hosts) + 1)]
        total = sum(raw)
        return [w / total for w in raw]


@dataclass
class ArchiveStats:
    """What was written: counts the benches compare with what mediatool found."""

    posts: int = 0
    references: int = 0
    pictures: int = 0  # distinct pictures (variants of one count once)
    urls: set[str] = field(default_factory=set, repr=False)  # distinct origin URLs
    per_host: Counter[str] = field(default_factory=Counter)  # references per origin host

    @property
    def distinct_urls(self) -> int:
        return len(self.urls)


class _Drawer:
    """The random choices of one archive: which host, which picture, which wrapping."""

    def __init__(self, shape: ArchiveShape) -> None:
        self.shape = shape
        self.pick = random.Random(shape.seed)
        weights = shape.host_weights()
        self.cum = [sum(weights[: i + 1]) for i in range(len(weights))]
        self.host_of = array("I")  # picture number -> host rank
        self.boilerplate = [self._new_host() for _ in range(shape.boilerplate)]

    def _new_host(self) -> int:
        return min(
            bisect.bisect_left(self.cum, self.pick.random() * self.cum[-1]), len(self.cum) - 1
        )

    def picture(self) -> tuple[int, int, str]:
        """(picture number, variant, host) of the next reference."""
        shape, pick = self.shape, self.pick
        roll = pick.random()
        if roll < shape.boilerplate_share and self.boilerplate:
            number = pick.randrange(len(self.boilerplate))
            return number, 0, BOILERPLATE_HOST
        if roll < shape.boilerplate_share + shape.variant_share and self.host_of:
            number = pick.randrange(len(self.host_of))
            return number + shape.boilerplate, pick.randint(1, shape.variants), self._host(number)
        self.host_of.append(self._new_host())
        number = len(self.host_of) - 1
        return number + shape.boilerplate, 0, self._host(number)

    def _host(self, number: int) -> str:
        return self.shape.hosts[self.host_of[number]]

    def origin_url(self, number: int, variant: int, host: str) -> str:
        scheme = "https" if host in self.shape.https_hosts else "http"
        ext = "png" if number % 2 else "jpg"
        return f"{scheme}://{host}/media/{number % 97}/{generated_path(number, variant, ext)}"

    def wrapped(self, origin: str) -> str:
        """`origin` as a post writes it: bare or through a proxy, in the calibrated shares."""
        shape, roll = self.shape, self.pick.random()
        scheme, _, rest = origin.partition("://")
        if roll < shape.photon_share:
            ssl = "&ssl=1" if scheme == "https" else ""
            return f"https://i{len(rest) % 3}.wp.com/{rest}?w=748{ssl}"
        roll = (roll - shape.photon_share) / max(1 - shape.photon_share, 1e-9)
        if scheme == "http":
            return (
                f"https://cors.zfour.workers.dev/?{origin}" if roll < shape.cors_share else origin
            )
        weserv = WESERV_HOSTS[len(rest) % 2]
        forms = (
            f"https://{weserv}/?url={{}}",
            "https://images.weserv.nl/?url=https://proxy.rifx.online/{}",
        )
        for form, share in zip(forms, shape.https_wrap_shares, strict=True):
            if roll < share:
                return form.format(origin)
            roll -= share
        return origin

    def count(self) -> int:
        return self.pick.choice(self.shape.refs_per_post)


def write_archive(shape: ArchiveShape, folder: Path) -> ArchiveStats:
    """Write `shape.posts` posts below `folder` (post-N.md in folders of POSTS_PER_FOLDER)."""
    drawer = _Drawer(shape)
    stats = ArchiveStats()
    for number in range(shape.posts):
        origins = [drawer.picture() for _ in range(drawer.count())]
        urls = [drawer.origin_url(*picture) for picture in origins]
        text = _post_text(number, urls, drawer)
        path = folder / f"{number // POSTS_PER_FOLDER:04}" / f"post-{number}.md"
        if number % POSTS_PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        stats.posts += 1
        stats.urls.update(urls)
        for _, _, host in origins:
            stats.per_host[host] += 1
        stats.references += len(urls) + (2 if urls and "thumbnail:" in text else 0)
    stats.pictures = len(drawer.host_of) + min(shape.boilerplate, len(stats.urls))
    return stats


def _post_text(number: int, urls: Sequence[str], drawer: _Drawer) -> str:
    """One post: YAML front matter (the first image in thumbnail and headimg, as RSSHub does,
    for `thumbnail_share` of the posts), then a paragraph and one image per URL."""
    pick, shape = drawer.pick, drawer.shape
    head = [f"title: 'Simulated post {number}'", f"date: 2021-{number % 12 + 1:02}-01 10:00:00"]
    if urls and pick.random() < shape.thumbnail_share:
        first = drawer.wrapped(urls[0])
        head += [f"thumbnail: '{first}'", f"headimg: '{first}'"]
    markdown = pick.random() < shape.markdown_share
    body = list(_body_lines(number, urls, drawer, markdown))
    return "---\n" + "\n".join(head) + "\n---\n\n" + "\n".join(body) + "\n"


def _body_lines(number: int, urls: Sequence[str], drawer: _Drawer, markdown: bool) -> Iterator[str]:
    yield f"Post {number} of the simulated archive, with {len(urls)} images."
    for index, url in enumerate(urls):
        yield ""
        wrapped = drawer.wrapped(url)
        if markdown:
            yield f"![image {index}]({wrapped})"
        else:
            yield f'<p><img src="{wrapped}" referrerpolicy="no-referrer"></p>'
