# syntax=docker/dockerfile:1
# Prescaler controller image.
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t prescaler:0.1.0 .
#   docker run --rm prescaler:0.1.0 --help
#
# VERSION must be the `version` of pyproject.toml, the one version source: the final
# stage installs exactly `prescaler==$VERSION`, so a build with another VERSION fails,
# and tests/deploy/test_dockerfile.py checks that the default here, the labels and
# `prescaler --version` agree. REVISION (the git commit) goes into the image labels.
#
# Stage 1 builds the prescaler wheel and collects wheels for its runtime dependencies
# ([project.dependencies] in pyproject.toml; the dev extras are never installed).
# Stage 2 installs them offline from those wheels into a fresh slim image: no compiler,
# no build backend, no tests, no source tree. It runs as a numeric non-root user with a
# read-only root filesystem in mind: only /tmp needs to be writable (an emptyDir in
# deploy/base/deployment.yaml). No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
#
# The base is pinned to a full Python version (3.11: the interpreter CI tests on). Pin it
# to a digest as well when you build releases: python:3.11.13-slim-bookworm@sha256:...

FROM python:3.11.13-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is built from (see .dockerignore); LICENSE goes into the wheel's metadata.
COPY pyproject.toml README.md LICENSE ./
COPY autoscaler ./autoscaler
COPY forecasting ./forecasting

# The project wheel plus a wheel for every runtime dependency (all publish manylinux
# wheels for this platform, so nothing is compiled here either).
RUN pip wheel --wheel-dir /wheels .


FROM python:3.11.13-slim-bookworm AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown

# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
LABEL org.opencontainers.image.title="prescaler" \
      org.opencontainers.image.description="Predictive autoscaler for Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/prescaler/prescaler" \
      org.opencontainers.image.url="https://github.com/prescaler/prescaler" \
      org.opencontainers.image.documentation="https://github.com/prescaler/prescaler/blob/main/docs/running-in-a-cluster.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.13-slim-bookworm"

# libgomp1: the OpenMP runtime LightGBM's wheel links against. Nothing else from apt.
# DL3008 (pin apt versions) is ignored on purpose: the Debian archive drops a package's
# previous version when a security update lands, so a pinned libgomp1 would break the
# build within weeks; the pinned base image fixes the Debian release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Install from the build stage's wheels only (--no-index: no registry at this point),
# through a bind mount, so the wheels never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "prescaler==${VERSION}"

# The user the manifests run as (runAsUser: 65532). HOME and caches point at /tmp, the
# one writable mount; bytecode was compiled at install time, so none is written at run time.
RUN groupadd --system --gid 65532 prescaler \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin prescaler
# MALLOC_MMAP_THRESHOLD_: a fixed threshold makes glibc mmap every array over 64 KiB, so
# the memory of an hourly retrain goes back to the OS instead of staying in the heap
# (bench/results/controller.md: steady RSS for 500 targets about halves with it).
ENV HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_MMAP_THRESHOLD_=65536

# The source revision prescaler_build_info reports (`unknown` when the build passes none).
ARG REVISION=unknown
ENV PRESCALER_REVISION=$REVISION

USER 65532:65532
WORKDIR /tmp

# /metrics, /healthz, /readyz (config: metrics.port).
EXPOSE 8080

ENTRYPOINT ["prescaler"]
CMD ["run", "--config", "/etc/prescaler/config.yaml"]
