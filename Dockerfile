# syntax=docker/dockerfile:1
# Feedback Factory image. One Dockerfile, two images:
#   API / consumer / drift / migrations:  docker build -t feedback-factory .
#   training worker (torch, TRL):         docker build --build-arg EXTRAS=train,k8s -t feedback-factory-train .
# `k8s` (the kubernetes client) lets the API launch training Jobs.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG EXTRAS=k8s
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FF_DATA_DIR=/var/lib/feedback-factory \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/feedback-factory \
    && chown app:app /var/lib/feedback-factory

# the project's wheel is bind-mounted from the build stage, so it leaves no layer behind
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    set -eu; wheel="$(ls /wheels/*.whl)"; \
    if [ -n "$EXTRAS" ]; then pip install "${wheel}[${EXTRAS}]"; else pip install "$wheel"; fi

USER 10001:10001
WORKDIR /var/lib/feedback-factory
EXPOSE 8000 9108
ENTRYPOINT ["feedback-factory"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
