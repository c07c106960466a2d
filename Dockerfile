# horde's container image: `horde master`, `horde worker` and `horde target` in one image.
#
#   docker build -t horde .        (or: podman build -t horde .)
#   docker run --rm horde --help
#
# Two stages on the same pinned official Python image: the first builds horde's wheel and
# installs it with its dependencies' wheels into a virtual environment; the last copies only
# that environment (no compilers, no pip cache, no sources) and runs as a non-root user.
# The Kubernetes manifests in deploy/kubernetes use this image (see the README's
# "Kubernetes" section).

FROM docker.io/library/python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY horde horde
COPY master master
COPY worker worker
COPY protocol protocol
RUN python3 -m pip wheel --wheel-dir /wheels . \
 && python3 -m venv /opt/horde \
 && /opt/horde/bin/pip install --no-index --find-links /wheels horde \
 && /opt/horde/bin/pip uninstall --yes pip \
 && /opt/horde/bin/horde --version

FROM docker.io/library/python:3.11-slim-bookworm
# A fixed numeric user, so Kubernetes' runAsNonRoot can check it without a name lookup;
# an empty working directory (the CLI reads ./locust.conf and ./horde.conf when present).
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin horde \
 && mkdir /srv/horde
COPY --from=build /opt/horde /opt/horde
ENV PATH=/opt/horde/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
WORKDIR /srv/horde
USER 10001:10001
# ZeroMQ (workers connect), web UI and API, health probes.
EXPOSE 5557 8089 8090
ENTRYPOINT ["horde"]
CMD ["--help"]
