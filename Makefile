# Two commands on a fresh machine:  `make train`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: install train test tensorboard bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the pinned version resolves to a local CPU build here (see requirements.txt).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

train: install
	$(PY) train_sb3.py $(ARGS)

test: install
	$(PY) -m pytest -q

tensorboard: install
	$(VENV)/bin/tensorboard --logdir ./logs

bench: install
	$(PY) -m bench.throughput $(ARGS)

clean:
	rm -rf $(VENV)
