#!/bin/sh
# The image's build steps, in one place. The Dockerfile RUNs this script, and CI runs the same
# script in a fresh virtualenv without Docker (scripts/check_image_build.sh), so what CI checks
# is what `docker compose build` does.
#
#   sh scripts/image_build.sh deps [PIP OPTION…]   install the pinned runtime requirements
#   sh scripts/image_build.sh static   collect static files (admin, API docs) into staticfiles/
set -eu
cd "$(dirname "$0")/.."

case "${1:-}" in
  deps)
    shift
    python -m pip install "$@" -r requirements/prod.txt
    ;;
  static)
    # The image runs production settings, which refuse to load without the deployment's
    # secret key, database, shared cache and metrics token. collectstatic uses none of them: it
    # only copies files. So this one command gets throwaway values that nothing connects to and
    # that the image does not keep (they are not ENV); the real ones come from .env at run time.
    DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_SECRET_KEY=collectstatic-build-step-only-not-a-real-secret-key-0123456789 \
    DATABASE_URL=postgres://collectstatic@127.0.0.1:1/collectstatic-build-step-only \
    CACHE_URL=redis://127.0.0.1:1/0 \
    METRICS_TOKEN= \
    METRICS_PUBLIC=true \
      python manage.py collectstatic --noinput
    ;;
  *)
    echo "usage: sh scripts/image_build.sh deps|static" >&2
    exit 2
    ;;
esac
