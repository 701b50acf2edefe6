# examsync operator image. The base is a build argument so CI can build from a locally made
# Debian base (no registry reachable there); any Debian-based image with python3 (>= 3.11),
# python3-venv and ca-certificates fits. The default is pinned by digest (the multi-architecture
# index of python:3.11.14-slim-bookworm), so a moved tag never changes what is built.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every Python package comes from the hashed lock files (pip checks each sha256): the runtime
# dependencies into the image's venv, the build tools into a throwaway one. This layer is reused
# while only code changes.
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN python3 -m venv /opt/examsync \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements/build.txt \
    && /opt/examsync/bin/pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
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
