#!/bin/sh
# Regenerate the rendered example in docs/review.md: a crafted pull request on a copy of the
# reference fleet (fleet-state/), reviewed against its sample statuses (fleet-state/.status).
#
#   examples/ci/review-example.sh                 # print the comment
#   examples/ci/review-example.sh --update-docs   # rewrite it in docs/review.md
#
# Commit dates, names and the change are fixed, so the commit ids, and the comment, are the
# same on every run (as long as the planner's reasons stay the same).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tva=${TVA:-tva}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="Sam" GIT_AUTHOR_EMAIL="sam@example.invalid"
export GIT_COMMITTER_NAME="Sam" GIT_COMMITTER_EMAIL="sam@example.invalid"
export GIT_AUTHOR_DATE="2025-06-01T18:00:00Z" GIT_COMMITTER_DATE="2025-06-01T18:00:00Z"

cp -R "$root/fleet-state" "$work/fleet"
rm -rf "$work/fleet/.status"
cd "$work/fleet"
git init --quiet --initial-branch=main
git add --all
git commit --quiet --no-gpg-sign -m "The fleet"

# The pull request: a third copy of every film, two (not three) copies of the home videos with
# pruning above that, one episode less kept ready on the TV, and a new desktop.
sed -i.orig 's/^min: 2$/min: 3/' custody/films.yaml
sed -i.orig 's/^min: 3$/min: 2/' custody/home-videos.yaml
printf 'max: 2\nprune: true\n' >> custody/home-videos.yaml
sed -i.orig 's/keep_next: 3/keep_next: 2/' watchlists/tv-shows.yaml
rm -f custody/*.orig watchlists/*.orig
cat > devices/desktop.yaml <<'YAML'
apiVersion: tva/v1
kind: Device
name: desktop
class: desktop
always_on: false
labels: [home]
storage:
  - path: /data/media
    capacity: 2TiB
YAML
git add --all
GIT_AUTHOR_DATE="2025-06-01T19:00:00Z" GIT_COMMITTER_DATE="2025-06-01T19:00:00Z" \
  git commit --quiet --no-gpg-sign -m "More copies of films, fewer of home videos; a desktop"

status=0
"$tva" review main~1 main --status "$root/fleet-state/.status" --markdown > "$work/review.md" \
  || status=$?
[ "$status" -eq 2 ] || { echo "expected exit code 2, got $status" >&2; exit 1; }

if [ "${1:-}" = "--update-docs" ]; then
  "${PYTHON:-python3}" - "$root/docs/review.md" "$work/review.md" <<'PY'
import sys
doc_path, example_path = sys.argv[1], sys.argv[2]
doc = open(doc_path, encoding="utf-8").read()
start, end = "<!-- example:start -->\n", "<!-- example:end -->"
head, rest = doc.split(start, 1)
_, tail = rest.split(end, 1)
example = open(example_path, encoding="utf-8").read()
open(doc_path, "w", encoding="utf-8").write(head + start + example + end + tail)
PY
else
  cat "$work/review.md"
fi
