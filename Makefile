# The two commands of the README: `make demo` and `make test`. Both build .venv from scratch when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# torch + torchvision: PyPI's CUDA builds, which also run on the CPU. They are the pair timm needs (a CPU-only
# torch wheel cannot import PyPI's torchvision), and the same venv serves a GPU host. On aarch64 PyPI only has
# CPU builds: `make install TORCH_SPEC="torch==2.9.1 torchvision==0.24.1"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test lint schemas clean chromium

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torchvision" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/monitor demo

# The integration and fault suites run again on each Apache Kafka line (KRaft, jars from Maven Central); without a
# JDK and Maven they are skipped with the reason (and fail under CI=true).
KAFKA_BROKERS ?= kafka-3.9 kafka-4.1

test: $(STAMP) chromium
	$(BIN)/ruff check schemas core connectors workers monitor benchmarks tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -q -ra
	@for broker in $(KAFKA_BROKERS); do \
		echo "== integration and fault suites on $$broker"; \
		EMBEDDED_BROKER=$$broker $(BIN)/pytest -q -ra -p no:cacheprovider tests/integration tests/faults || exit 1; \
	done

# The dashboard's browser tests drive Debian's chromium through Playwright (Playwright cannot download browsers
# here). Installed once when missing; sudo only when not root.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@[ -x $(CHROMIUM) ] || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

schemas: $(STAMP)
	$(BIN)/monitor schema --out schemas/json

clean:
	rm -rf $(VENV) .monitor .pytest_cache
