# gtsfm.cluster developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard extensions/molecule/*/molecule.yml)))

.PHONY: test test-cores deps venv unit lint sanity molecule multihost test-scale test-faults test-heavy demo demo-down build clean bench-broadcast bench-conda-env bench-checkout

test: deps unit lint sanity build molecule multihost ## the whole suite, from a fresh machine

deps: venv ## apt packages for the test bed, and the Python tool chain
	scripts/bootstrap

venv: $(VENV)/.stamp

$(VENV)/.stamp: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

unit: venv ## pytest unit tests of the inventory plugin, the modules and module_utils
	$(PY) -m pytest tests/unit -q

lint: venv ## yamllint, ansible-lint (production profile), ruff check and ruff format --check, antsibull-changelog lint
	yamllint -s .
	ruff check .
	ruff format --check .
	ansible-lint --profile production
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

sanity: venv ## ansible-test sanity on a copy of the collection
	scripts/sanity

molecule: venv ## every molecule scenario, each on its own test bed
	set -e; for s in $(SCENARIOS); do molecule test -s $$s; done

multihost: venv ## pytest + ansible-runner on a real 4-node bed: removal, unreachable node, check mode
	$(PY) -m pytest tests/multihost -q --durations=12 -m "not scale"

test-scale: deps ## tests/multihost marked scale: the N=16 beds (remote calls per node) and the 2,000-poll follow (~6 min)
	flock /tmp/gtsfm-bed.lock $(PY) -m pytest tests/multihost -q --durations=6 -m scale

test-faults: deps ## the fault campaign on a 4-node bed (tests/faults); writes docs/faults.md
	flock /tmp/gtsfm-bed.lock $(PY) -m pytest tests/faults -q

# CORES=2.16,2.21 runs only those lines; CORES_ARGS=--no-sanity (or --no-smoke) leaves a check out.
test-cores: ## every ansible-core line of tests/cores.txt: unit, sanity, site.yml twice on a 3-node bed (~15 min)
	scripts/core_matrix $(if $(CORES),--lines $(CORES)) $(CORES_ARGS)

test-heavy: venv ## tests/heavy: the env check on a 3-node bed with real torch, torchvision, opencv, lightgbm (~10 min)
	flock /tmp/gtsfm-bed.lock $(PY) -m pytest tests/heavy -q -s

demo: venv ## bring up a 3-node test bed and run the pipeline on it
	scripts/demo

demo-down: ## remove the demo bed (GTSFM_DEMO_BED, default demo)
	scripts/testbed down --name "$${GTSFM_DEMO_BED:-demo}"

build: venv ## the collection tarball, installed into a scratch path to prove it installs and documents; the EE's build context
	ansible-galaxy collection build --force --output-path build/
	rm -rf build/installed
	cd build && ansible-galaxy collection install --force -p installed gtsfm-cluster-*.tar.gz
	cd build && ANSIBLE_COLLECTIONS_PATH=installed ansible-doc -t inventory gtsfm.cluster.cluster_yaml >/dev/null
	cd build && ANSIBLE_COLLECTIONS_PATH=installed ansible-playbook --syntax-check -i localhost, gtsfm.cluster.site
	# The execution environment: the installed collection's bindep.txt as another EE's introspection reads it,
	# then a build context for meta/execution-environment.yml (no image is built).
	ansible-builder introspect build/installed | grep -q "openssh-client .*gtsfm.cluster"
	rm -rf build/ee && mkdir -p build/ee
	cp build/installed/ansible_collections/gtsfm/cluster/{meta/execution-environment.yml,requirements.txt,bindep.txt} build/ee/
	ansible-builder create -f build/ee/execution-environment.yml -c build/ee/context >/dev/null

bench-broadcast: venv ## benchmarks/broadcast.py: 200 MB at 100mbit to N = 2 4 8, ours vs one copy vs a star (~10 min)
	flock /tmp/gtsfm-bed.lock $(PY) benchmarks/broadcast.py

clean:
	rm -rf build .cache

bench-conda-env: venv ## benchmarks/conda_env.py: build_once vs every_node, N = 1 2 4 8 at 100mbit, source capped (~5 min)
	flock /tmp/gtsfm-bed.lock $(PY) benchmarks/conda_env.py --source-rate 100mbit

bench-checkout: venv ## benchmarks/checkout.py: a 100 MB / 800-file and a 1 GB tree as a directory and an archive, to 3 nodes
	flock /tmp/gtsfm-bed.lock $(PY) benchmarks/checkout.py
