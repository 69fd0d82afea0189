# labledger's container image: the service with PostgreSQL and S3 support, run as a non-root
# user, its data in one volume, every setting from EXPERIMENT_ variables.
#
#   docker build -t labledger .
#   docker build --build-arg BASE_IMAGE=local/debian:bookworm -t labledger .   # no registry
#
# Any Debian-based image works as the base: one with Python 3.11+ (the default) or plain Debian,
# where Debian's python3 is installed. Behind a TLS-intercepting proxy, put its CA certificates
# (*.crt, PEM) in certs/ before building: they are trusted by apt, pip and labledger itself.
ARG BASE_IMAGE=python:3.12-slim-bookworm
FROM ${BASE_IMAGE}

ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# Extra CA certificates from the build context (certs/*.crt), trusted system-wide.
COPY certs/ /usr/local/share/ca-certificates/labledger/
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    packages="ca-certificates postgresql-client"; \
    command -v python3 >/dev/null || packages="$packages python3 python3-venv"; \
    apt-get install -y --no-install-recommends $packages; \
    rm -rf /var/lib/apt/lists/*; \
    update-ca-certificates; \
    useradd --system --uid 10001 --user-group --home-dir /var/lib/labledger --no-create-home \
        --shell /usr/sbin/nologin labledger; \
    install -d -o labledger -g labledger -m 0750 /var/lib/labledger

# Dependencies first, from pyproject.toml alone, so that a change of code rebuilds in seconds.
COPY pyproject.toml /src/
RUN set -eux; \
    python3 -m venv /opt/labledger; \
    python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb"))["project"]; \
extras = p["optional-dependencies"]; \
print("\n".join(p["dependencies"] + extras["postgres"] + extras["s3"]))' >/src/requirements.txt; \
    /opt/labledger/bin/pip install -r /src/requirements.txt
COPY README.md /src/
COPY src /src/src
COPY docker/entrypoint.sh /usr/local/bin/labledger-entrypoint
RUN set -eux; \
    chmod 0755 /usr/local/bin/labledger-entrypoint; \
    /opt/labledger/bin/pip install --no-deps /src; \
    rm -rf /src

ENV PATH=/opt/labledger/bin:$PATH \
    EXPERIMENT_DATA_DIR=/var/lib/labledger \
    EXPERIMENT_SERVER_URL=http://0.0.0.0:8002

USER labledger
WORKDIR /var/lib/labledger
VOLUME ["/var/lib/labledger"]
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8002/health', timeout=4)"]
ENTRYPOINT ["labledger-entrypoint"]
CMD ["labledger", "serve"]
