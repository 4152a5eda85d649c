#!/usr/bin/env bash
# Build the image's steps without Docker, so a change that breaks `docker compose build` fails
# CI. Reproduces the Dockerfile: the build context (the files git does not ignore; .dockerignore
# leaves out the same), a fresh virtualenv standing in for python:3.11-slim's interpreter, the
# image's ENV and nothing else from this shell, and the Dockerfile's own RUN steps
# (scripts/image_build.sh). pip may use its cache; the image build does not.
#
#   bash scripts/check_image_build.sh        (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

for step in deps static; do
  grep -Eq "^RUN sh scripts/image_build\.sh $step\$" Dockerfile || {
    echo "Dockerfile does not 'RUN sh scripts/image_build.sh $step': this check would not test it" >&2
    exit 1
  }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/check-image-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/app"

# COPY . .  (files deleted in the working tree but still in git's index are skipped)
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done \
  | tar --null -T - -cf - | tar -xf - -C "$work/app"

"${PYTHON:-python3}" -m venv "$work/venv"

# The Dockerfile's ENV (but PIP_NO_CACHE_DIR), then its RUN steps in its order.
env -i \
  PATH="$work/venv/bin:/usr/local/bin:/usr/bin:/bin" \
  HOME="${HOME:-/root}" \
  LANG=C.UTF-8 \
  PYTHONDONTWRITEBYTECODE=1 \
  PYTHONUNBUFFERED=1 \
  PIP_DISABLE_PIP_VERSION_CHECK=1 \
  PIP_CACHE_DIR="${PIP_CACHE_DIR:-${HOME:-/root}/.cache/pip}" \
  DJANGO_SETTINGS_MODULE=config.settings.production \
  PROMETHEUS_MULTIPROC_DIR="$work/prometheus" \
  sh -c 'cd "$1" && sh scripts/image_build.sh deps --quiet && sh scripts/image_build.sh static' \
  check "$work/app"

test -f "$work/app/staticfiles/admin/css/base.css" || {
  echo "collectstatic left no admin CSS in staticfiles/" >&2
  exit 1
}
echo "image build steps: ok"
