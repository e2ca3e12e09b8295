# syntax=docker/dockerfile:1.7
#
# llm-router container image.
#
#   docker build -t llm-router:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 --read-only --tmpfs /tmp llm-router:0.1.0
#
# Stage 1 compiles the Cython feature extractor into a wheel (`pip wheel .`) and installs it,
# with its dependencies, into a self-contained virtualenv. Stage 2 copies only that virtualenv
# onto a slim Python 3.11 base: no compiler, no sources, no pip cache. The shipped default
# config and router model are package data of router_core, so the image serves out of the box.
# At run time the process writes nothing outside /tmp (or a mounted volume), so the root
# filesystem can be mounted read-only.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore is an allow-list: only the packaging files and the packages reach the context.
COPY . /src
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels llm-router \
 && /opt/venv/bin/llm-router --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="llm-router" \
      org.opencontainers.image.description="Per-request LLM routing service over gRPC" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 router \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin router
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 50051 9090
# Standard grpc.health.v1 check with the stub the image already ships (no extra binary).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys,grpc;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;s=g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(),timeout=2).status;sys.exit(0 if s==h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["llm-router"]
CMD ["serve", "--host", "0.0.0.0", "--port", "50051"]
