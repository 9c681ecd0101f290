# syntax=docker/dockerfile:1
# Ferry's two images, one build (they hold the same package and differ in their command):
#   docker build --target operator -t ghcr.io/ferry-sync/ferry-operator:0.1.0 .
#   docker build --target worker   -t ghcr.io/ferry-sync/ferry-worker:0.1.0 .
# Not built on the development machines (no Docker engine there): see docs/images.md.

# Pinned base. For reproducible release builds, pin the digest too:
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm  -> python:3.11.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# mysqlclient (the snapshot's row readers) is compiled against MariaDB's client library:
# a compiler, its headers and, where the base has none, Python's (only in this stage).
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends gcc libc6-dev pkg-config libmariadb-dev \
      $(python3 -c 'import os, sysconfig; print("" if os.path.exists(sysconfig.get_path("include") + "/Python.h") else "python3-dev")') \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the package needs: the two source roots and the build metadata.
COPY pyproject.toml README.md ./
COPY operator/ferry_operator operator/ferry_operator
COPY runtime/ferry_runtime runtime/ferry_runtime
RUN python -m venv /opt/ferry \
 && /opt/ferry/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && /opt/ferry/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE} AS base
# MariaDB's client library, for mysqlclient (tests/infra's base has it already).
RUN dpkg-query -W libmariadb3 >/dev/null 2>&1 || { apt-get update -q \
 && apt-get install -y -q --no-install-recommends libmariadb3 && rm -rf /var/lib/apt/lists/*; }
COPY --from=build /opt/ferry /opt/ferry
ENV PATH=/opt/ferry/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The user the chart's and the rendered worker Deployment's securityContext run as
# (65532, "nonroot"); the root filesystem is read-only there, /tmp is an emptyDir. It has a
# passwd entry: getpass.getuser() (kopf's peering identity, among others) fails without one.
RUN echo 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group
USER 65532:65532
WORKDIR /tmp
# operator: /healthz and /metrics; worker: /healthz, /readyz, /status and /metrics.
EXPOSE 8080
# No ENTRYPOINT: the Deployments pass the whole command as args.

FROM base AS worker
LABEL org.opencontainers.image.title="ferry-worker" \
      org.opencontainers.image.description="Ferry: MySQL/MariaDB change data capture on Kubernetes (worker)" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["ferry-worker", "--help"]

FROM base AS operator
LABEL org.opencontainers.image.title="ferry-operator" \
      org.opencontainers.image.description="Ferry: MySQL/MariaDB change data capture on Kubernetes (operator)" \
      org.opencontainers.image.licenses="Apache-2.0"
CMD ["ferry", "operator", "--all-namespaces"]
