# seized in a container image. Build:  docker build -t seized .   (or podman/buildah; deploy/image-test.sh
# builds it from a Debian base made with mmdebstrap: --build-arg BASE=...). Any base with python3 (3.11+)
# and its venv module will do: seized is installed into a virtual environment, not the base's Python.
ARG BASE=python:3.11-slim

# Stage 1: build the wheel's install into /opt/seized (pip, setuptools and the build stay behind).
FROM $BASE AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/seized
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY templates ./templates
COPY static ./static
RUN /opt/seized/bin/pip install --quiet . && /opt/seized/bin/pip uninstall --quiet --yes pip

# Stage 2: the venv, a config and an unprivileged user; nothing else.
FROM $BASE
COPY --from=build /opt/seized /opt/seized
COPY config/seized.toml /etc/seized/seized.toml
RUN useradd --system --user-group --home-dir /var/lib/seized --no-create-home --shell /usr/sbin/nologin seized \
 && mkdir -p /var/lib/seized /var/lib/GeoIP \
 && chown seized:seized /var/lib/seized \
 && chmod 0700 /var/lib/seized

# The management listener binds every address inside the container so it can be published: publish
# it on the host's loopback only (-p 127.0.0.1:8081:8081). Everything else comes from the config
# (the /etc/seized volume) or SEIZED_* variables; GeoIP databases dropped into /var/lib/GeoIP are
# picked up while running. The first admin token is written to /var/lib/seized/initial-admin-token
# (mode 0600), never to the log.
ENV PATH=/opt/seized/bin:$PATH \
    SEIZED_DATA_DIR=/var/lib/seized \
    SEIZED_ADMIN=0.0.0.0:8081 \
    SEIZED_GEOIP_CITY_DB=/var/lib/GeoIP/GeoLite2-City.mmdb \
    SEIZED_GEOIP_ASN_DB=/var/lib/GeoIP/GeoLite2-ASN.mmdb
USER seized
WORKDIR /var/lib/seized
VOLUME ["/var/lib/seized", "/etc/seized", "/var/lib/GeoIP"]
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
# No curl in a slim image: seized asks its own management listener.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["seized", "healthcheck", "--config", "/etc/seized/seized.toml", "--timeout", "5"]
CMD ["seized", "serve", "--config", "/etc/seized/seized.toml"]
