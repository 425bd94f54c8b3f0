# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install chromium tools bench clean

run: $(STAMP)
	$(BIN)/seized serve --config config/seized.toml

# Random order (pytest-randomly prints its seed; add `--randomly-seed=N` to repeat an order, or
# `-p no:randomly` for file order) on two xdist workers, each taking a whole test file at a time.
test: $(STAMP) chromium tools
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

install: $(STAMP)

# The venv is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The notice page is tested in Debian's headless Chromium (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# Third-party programs the suite runs, from Debian's packages, each installed only when missing:
# node (the independent verifier, app/verifier/verify.js), nginx with its stream module and HAProxy
# (PROXY protocol in front of the listener); named-checkzone/named-checkconf (bind9-utils), Unbound and
# dnsmasq, which load the resolver lists (`seized domains export`); the tests run their own on 127.0.0.1.
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
	[ -z "$$missing" ] || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; }

# One table: seized vs nginx on the same bytes, open-loop latency, workers, hits lost, SIGKILL, storage
# and export (bench/pipeline.py --help). Needs wrk and nginx from Debian. `make bench BENCH_ARGS=--quick`.
bench: $(STAMP)
	$(BIN)/python bench/pipeline.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data *.egg-info
