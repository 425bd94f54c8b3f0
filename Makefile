# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install chromium tools bench image-test clean

run: $(RUN_STAMP)
	$(BIN)/seized serve --config config/seized.toml

# Random order (pytest-randomly prints its seed; add `--randomly-seed=N` to repeat an order, or
# `-p no:randomly` for file order) on two xdist workers, each taking a whole test file at a time.
test: $(STAMP) chromium tools
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

install: $(STAMP)

# Two installs into one venv, each redone whenever pyproject.toml changes: `make run` needs only
# seized and its dependencies (RUN_STAMP); `make test` also the test extra (STAMP), which covers
# running too, so a `make run` after it installs nothing.
$(RUN_STAMP): pyproject.toml
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then touch $@; else \
	  $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --upgrade pip && \
	  $(BIN)/pip install --quiet -e . && touch $@; fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(RUN_STAMP)

# The notice page is tested in Debian's headless Chromium (Playwright drives it; it never downloads a browser).
# Only when missing; --no-upgrade: an installed chromium is left as it is.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade chromium; }

# Third-party programs the suite runs, from Debian's packages, each installed only when missing:
# node (the independent verifier, app/verifier/verify.js), nginx with its stream module and HAProxy
# (PROXY protocol in front of the listener), systemd-analyze (deploy/seized.service is verified),
# named-checkzone/named-checkconf (bind9-utils), Unbound and dnsmasq, which load the resolver lists (`seized domains export`); the tests run their own on 127.0.0.1.
# ffmpeg and tesseract-ocr (+ English data) check the notice video as a player gets it: ffmpeg decodes it
# and extracts its subtitles, tesseract reads the visitor's IP from a decoded frame (tests/test_tv_picture.py).
# In a container (policy-rc.d, no init) installing unbound starts nothing; on a host with systemd the
# package enables its resolver service: `systemctl disable --now unbound` if the host should not run one.
tools:
	@missing=""; command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing="$$missing libnginx-mod-stream"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	command -v named-checkzone >/dev/null || missing="$$missing bind9-utils"; \
	[ -x /usr/sbin/unbound ] || missing="$$missing unbound"; \
	[ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	[ -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || missing="$$missing tesseract-ocr-eng"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --no-upgrade $$missing; }

# One table: seized vs nginx on the same bytes, open-loop latency, workers, hits lost, SIGKILL, storage
# and export (bench/pipeline.py --help). Needs wrk and nginx from Debian. `make bench BENCH_ARGS=--quick`.
bench: $(STAMP)
	$(BIN)/python bench/pipeline.py $(BENCH_ARGS)

# Opt-in, not part of `make test` (minutes; root or sudo): build the container image from a Debian
# base and run it as its non-root user, checking the notice, /healthz and a stored hit (deploy/image-test.sh).
image-test:
	deploy/image-test.sh

clean:
	rm -rf $(VENV) data *.egg-info
