# syntax=docker/dockerfile:1
# The pipeline image: the locked environment (uv.lock, no dev tools) that runs `dvc repro` on a
# checkout mounted at /work. The scheduled retraining, or a Kubernetes Job when the data
# outgrows a runner, runs it:
#   docker run --rm -v "$PWD:/work" -e MLFLOW_TRACKING_URI tabml-pipeline:<commit>
# `make image` builds it with the lineage labels (commit, model, data). Behind a proxy with its
# own CA, pass the bundle as the build secret `ca` (make image CA_BUNDLE=/path/to/ca.crt).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN --mount=type=secret,id=ca,required=false,target=/etc/ssl/certs/ca-certificates.crt \
    python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=secret,id=ca,required=false,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python python3
COPY src ./src
RUN --mount=type=secret,id=ca,required=false,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python python3

FROM ${PYTHON_IMAGE}
# git: DVC reads the checkout's history. The latest bookworm package is what we want.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin tabml
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    DVC_NO_ANALYTICS=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1
ARG GIT_COMMIT=unknown MODEL_VERSION=unregistered DATA_MD5=unknown
LABEL org.opencontainers.image.title="tabml-pipeline" \
      org.opencontainers.image.description="Environment that reproduces the tabml DVC pipeline" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      io.tabml.model.version="${MODEL_VERSION}" \
      io.tabml.data.md5="${DATA_MD5}"
USER 10001
WORKDIR /work
ENTRYPOINT ["dvc"]
CMD ["repro"]
