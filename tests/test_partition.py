"""mediatool.partition: the one function that gives each host its part."""

from __future__ import annotations

import pytest

from mediatool.fetch.hosts import host_of
from mediatool.models import FetchJob
from mediatool.partition import Shard, host_partitions, hosts_taking_turns, shard_of


def _jobs(urls: list[str]) -> list[FetchJob]:
    return [FetchJob(url, (url,)) for url in urls]


def _of_shard(jobs: list[FetchJob], shard: Shard) -> list[FetchJob]:
    return [job for job in jobs if shard.holds(job.origin_url)]


def test_shard_parse_is_one_based_and_names_bad_values() -> None:
    assert Shard.parse("2/4") == Shard(1, 4)
    assert str(Shard.parse("4/4")) == "4/4"
    for bad in ("0/4", "5/4", "x/4", "3", "1/0", ""):
        with pytest.raises(ValueError, match="shard must be I/N"):
            Shard.parse(bad)


def test_shard_of_is_stable_across_processes() -> None:
    # A fixed value: every machine of a CI matrix must agree (blake2b, not salted hash()).
    # Pinned: changing the function would move hosts between the shards of running matrices.
    assert [shard_of(h, 7) for h in ("a.example", "b.example", "i0.wp.com")] == [4, 2, 1]
    assert shard_of("anything", 1) == 0


def test_shards_split_every_job_once_and_hosts_never_span_shards() -> None:
    urls = [f"https://h{i % 13}.example/{i}.jpg" for i in range(200)]
    jobs = _jobs(urls)
    shards = [_of_shard(jobs, Shard(i, 4)) for i in range(4)]
    assert sorted(j.origin_url for s in shards for j in s) == sorted(urls)
    owners: dict[str, set[int]] = {}
    for i, shard in enumerate(shards):
        for job in shard:
            owners.setdefault(host_of(job.origin_url), set()).add(i)
    assert all(len(o) == 1 for o in owners.values())


def test_host_partitions_match_shards_put_big_parts_first_and_let_hosts_take_turns() -> None:
    urls = [f"https://big.example/{i}.jpg" for i in range(50)]
    urls += [f"https://h{i % 9}.example/{i}.jpg" for i in range(60)]
    jobs = _jobs(urls)
    parts = host_partitions(jobs, 3)
    assert sum(len(p) for p in parts) == len(jobs)
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)
    for part in parts:
        index = shard_of(host_of(part[0].origin_url), 3)
        assert {j.origin_url for j in part} == {
            j.origin_url for j in _of_shard(jobs, Shard(index, 3))
        }
    biggest = next(p for p in parts if any("big.example" in j.origin_url for j in p))
    hosts = [host_of(j.origin_url) for j in biggest]
    assert hosts[0] == "big.example"  # its hosts take turns, the biggest first
    assert len(set(hosts[: len(set(hosts))])) == len(set(hosts)) > 1


def test_hosts_take_turns_busiest_first_each_in_its_order() -> None:
    urls = sorted(
        [
            f"http://{h}/{i:05}.jpg"
            for h, n in (("a.test", 3), ("b.test", 1), ("c.test", 2))
            for i in range(n)
        ]
    )
    assert hosts_taking_turns(urls) == [
        "http://a.test/00000.jpg",
        "http://c.test/00000.jpg",
        "http://b.test/00000.jpg",
        "http://a.test/00001.jpg",
        "http://c.test/00001.jpg",
        "http://a.test/00002.jpg",
    ]
