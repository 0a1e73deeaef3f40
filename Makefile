# CSDformer on microcontrollers: the two commands are `make demo` and `make test`.
# Both install what they need (Debian packages, the Python virtualenv) idempotently.

SHELL := /bin/bash
.DEFAULT_GOAL := help

REQUIREMENTS := Toolchain/requirements.txt
VENV ?= $(HOME)/.cache/csdformer/venv-$(shell sha1sum $(REQUIREMENTS) | cut -c1-12)
PYTHON := $(VENV)/bin/python
PY := PYTHONPATH=$(CURDIR)/Toolchain $(PYTHON)

MODEL ?= Toolchain/models/fmnist-tiny
CONFIG ?= Toolchain/configs/fmnist-tiny.json
OUT ?= runs/fmnist-tiny

.PHONY: help deps demo test test-python train report evaluate

help:
	@echo "make demo      run the bundled reference model (see README)"
	@echo "make test      every test suite"
	@echo "make train     CONFIG=... OUT=...   train and export a model (resumes)"
	@echo "make report    MODEL=...            training curves and spike-count histograms (PNG)"
	@echo "make evaluate  MODEL=...            fake-quant accuracy of an export on the test set"
	@echo "make deps      install Debian packages and the virtualenv ($(VENV))"

deps: $(VENV)/.installed
	@Toolchain/scripts/install-deps.sh $(VENV) $(REQUIREMENTS)

$(VENV)/.installed: $(REQUIREMENTS)
	@Toolchain/scripts/install-deps.sh $(VENV) $(REQUIREMENTS)

demo: deps
	@$(PY) -m csdformer.evaluate --model $(MODEL)

test: deps test-python

test-python: deps
	@$(PY) -m pytest Tests/Python -q -p no:cacheprovider

train: deps
	@$(PY) -m csdformer.train --config $(CONFIG) --out $(OUT)

report: deps
	@$(PY) -m csdformer.report --model $(MODEL) --out $(MODEL)/report

evaluate: deps
	@$(PY) -m csdformer.evaluate --model $(MODEL)
