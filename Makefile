# The two commands of the README: `make demo` and `make test`. Both build .venv from scratch when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# torch: the CPU build (2.13.0, a local wheel on the dev/CI machines, ~0.9 GB) unless a torch is already
# installed or TORCH_SPEC says otherwise. On a GPU host use `make install TORCH_SPEC=torch` for PyPI's CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint schemas clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/monitor demo

test: $(STAMP)
	$(BIN)/ruff check monitor workers schemas tests
	$(BIN)/pytest -q -ra

schemas: $(STAMP)
	$(BIN)/monitor schema --out schemas/json

clean:
	rm -rf $(VENV) .monitor .pytest_cache
