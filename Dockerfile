# The platform's one image: the web tier (gunicorn), the migrate job and the Celery worker and
# beat all run it with a different command (see docker-compose.yml).
FROM python:3.11-slim

# PROMETHEUS_MULTIPROC_DIR: gunicorn runs several worker processes; prometheus_client keeps each
# one's samples in this directory and /metrics adds them up (inventory/metrics.py). It is emptied
# when the web container starts.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app

# The build steps live in scripts/image_build.sh, which CI also runs without Docker
# (scripts/check_image_build.sh from .ci/run): change them there, not here.
# Dependencies first, so code changes reuse this layer. Every wheel (psycopg[binary],
# cryptography) is prebuilt for slim: no compiler or system libraries needed.
COPY requirements/ requirements/
COPY scripts/image_build.sh scripts/image_build.sh
RUN sh scripts/image_build.sh deps

# .dockerignore keeps .env (secrets), .git and local leftovers out of the image.
COPY . .

# collectstatic under production settings, with throwaway values for what those settings demand
# (key, database, cache, metrics token) that live only in this step: see the script.
RUN sh scripts/image_build.sh static

RUN useradd --system --uid 10001 --no-create-home --home-dir /app app \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" \
    && chown app "$PROMETHEUS_MULTIPROC_DIR"
USER app

EXPOSE 8000

# Stale per-process metric files from a previous run would be added to the new totals.
CMD ["sh", "-c", "mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*.db && exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers 3 --worker-tmp-dir /dev/shm --no-control-socket"]
