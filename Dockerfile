# Torii operator image. Multi-stage: build a virtualenv with only runtime dependencies, copy it into a slim
# runtime image that runs as a non-root user. Base images pinned by exact version.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/torii
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/torii/bin/pip install --no-cache-dir .

FROM python:3.11.11-slim-bookworm AS runtime
ENV PATH=/opt/torii/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 torii && useradd --system --uid 10001 --gid torii --no-create-home torii
COPY --from=build /opt/torii /opt/torii
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["torii", "run"]
