#!/usr/bin/env bash
# Set up mediatool and run it on the example archive, end to end, with no internet:
# a local origin server answers for the archive's image hosts (through HTTP_PROXY/HTTPS_PROXY,
# with its own test CA in SSL_CERT_FILE); fetch, rewrite, then show a diff of one post.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup

work=examples/work
rm -rf "$work"
mkdir -p "$work"
cp -R examples/archive/posts "$work/posts"

.venv/bin/python -m mediatool.testing.origin --root examples/archive/origin \
  --ca-out "$work/origin-ca.pem" >"$work/origin.out" 2>"$work/origin.err" &
origin_pid=$!
trap 'kill "$origin_pid" 2>/dev/null; wait "$origin_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^CA=' "$work/origin.out" 2>/dev/null && break
  sleep 0.1
done
proxy=$(sed -n 's/^PROXY=//p' "$work/origin.out")
[ -n "$proxy" ] || { echo "origin server did not start:"; cat "$work/origin.err"; exit 3; }
export HTTP_PROXY="$proxy" HTTPS_PROXY="$proxy" SSL_CERT_FILE="$work/origin-ca.pem" NO_PROXY=""
echo "origin server: $proxy (plays the archive's image hosts)"

echo
echo "\$ mediatool fetch $work/posts --cache $work/cache"
.venv/bin/mediatool fetch "$work/posts" --cache "$work/cache"
echo
echo "\$ mediatool rewrite $work/posts --cache $work/cache"
.venv/bin/mediatool rewrite "$work/posts" --cache "$work/cache"
echo
echo "\$ mediatool report --cache $work/cache"
.venv/bin/mediatool report --cache "$work/cache"
echo
post="10分钟内违停驶离，可免罚！.md"
echo "\$ git diff --no-index --word-diff examples/archive/posts/$post $work/posts/$post"
git --no-pager diff --no-index --word-diff=plain --word-diff-regex='[^[:space:]]+' \
  "examples/archive/posts/$post" "$work/posts/$post" | grep -E '\[-|\{\+' |
  .venv/bin/python -c 'import sys; [print(l if len(l) < 240 else l[:239] + "…") for l in sys.stdin.read().splitlines()]' || true
