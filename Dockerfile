# syntax=docker/dockerfile:1
# jobyard: one image for API nodes (`serve --no-worker`), workers (`worker`) and the
# all-in-one server (`serve`, the default command). See docs/docker.md.

# --- build: a wheel of jobyard and of every dependency -------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

# --- runtime: the wheels installed on a slim base, run by an unprivileged user -------
FROM python:3.11-slim-bookworm
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    JOBYARD_HOST=0.0.0.0 \
    JOBYARD_PORT=8000 \
    JOBYARD_DATABASE_URL=sqlite:////var/lib/jobyard/jobyard.db
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/jobyard-*.whl \
    && groupadd --system --gid 10001 jobyard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/jobyard --create-home jobyard
# numeric, so that a runtime can tell it is not root (runAsNonRoot)
USER 10001:10001
WORKDIR /var/lib/jobyard
VOLUME ["/var/lib/jobyard"]
EXPOSE 8000
# Slim images have no curl: Python's urllib asks /healthz; any error or non-2xx fails.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('JOBYARD_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["jobyard"]
CMD ["serve"]
