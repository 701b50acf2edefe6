# examsync operator image. The base is a build argument so CI can build from a locally made
# Debian base (no registry reachable there); any Debian-based image with python3 (>= 3.11),
# python3-venv and ca-certificates fits, e.g. python:3.11-slim-bookworm.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The runtime venv gets the dependencies only, from pyproject.toml alone (a stub package stands in
# for the code), so this layer and its copy in the final stage are reused while only code changes.
COPY pyproject.toml ./
RUN python3 -m venv /opt/examsync \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir 'setuptools>=68' wheel \
    && mkdir -p operator/examsync \
    && touch README.md operator/examsync/__init__.py \
    && /opt/examsync/bin/pip install --no-cache-dir . \
    && /opt/examsync/bin/pip uninstall --yes examsync \
    && rm -rf build operator README.md
COPY README.md ./
COPY operator ./operator
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${BASE_IMAGE}
ENV PATH=/opt/examsync/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it.
RUN echo 'examsync:x:10001:10001:examsync:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'examsync:x:10001:' >> /etc/group
COPY --from=builder /opt/examsync /opt/examsync
COPY --from=builder /wheels /wheels
# Offline: the wheel only, its dependencies are in the venv already.
RUN /opt/examsync/bin/pip install --no-cache-dir --no-index --no-deps /wheels/examsync-*.whl \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /tmp
# metrics (/metrics) and kopf's liveness endpoint (/healthz)
EXPOSE 9464 8080
ENTRYPOINT ["examsync"]
CMD ["run"]
