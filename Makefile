# Two commands on a fresh machine:  `make train`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install install-ray train test tensorboard bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the pinned version resolves to a local CPU build here (see requirements.txt).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Ray is optional for training (environment.selfplay.backend: ray); the tests run the Ray backend, so `make test`
# installs it.
$(VENV)/.ray-installed: $(VENV)/.installed requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt
	touch $@

install-ray: $(VENV)/.ray-installed

train: install
	$(PY) train_sb3.py $(ARGS)

test: install-ray
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

tensorboard: install
	$(VENV)/bin/tensorboard --logdir ./logs

bench: install
	$(PY) -m bench.throughput $(ARGS)

clean:
	rm -rf $(VENV)
