# seized in a container. The management listener binds 0.0.0.0 inside the container so it
# can be published; publish it on the host's loopback only: -p 127.0.0.1:8081:8081
FROM python:3.11-slim

WORKDIR /srv/seized
RUN useradd --system --home-dir /srv/seized seized
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .
COPY templates ./templates
COPY static ./static
COPY config ./config
RUN mkdir -p data && chown seized data

# Installed as a package, the app finds its templates and stylesheet here.
ENV SEIZED_TEMPLATES_DIR=/srv/seized/templates \
    SEIZED_STATIC_DIR=/srv/seized/static \
    SEIZED_DATA_DIR=/srv/seized/data

USER seized
VOLUME /srv/seized/data
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
CMD ["seized", "serve", "--config", "config/seized.toml", "--admin", "0.0.0.0:8081"]
