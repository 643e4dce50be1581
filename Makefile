# dbfleet: `make demo` runs the main job end to end, `make test` runs every test,
# `make bench` runs the benchmarks. Each does the whole setup first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup fleet fleet-status fleet-stop demo test test-unit bench collection clean

setup:
	@scripts/bootstrap.sh

# The local fleet (three mariadbd on 127.0.0.1) and the namespace fleet (hosts with their own
# sshd, mariadbd and cron, reached over SSH; FLEET_HOSTS=db=4,worker=2,backup=1 by default).
fleet: setup
	@$(PY) -m devtools.fleet start
	@$(PY) -m devtools.netfleet start

fleet-status:
	@$(PY) -m devtools.fleet status
	@$(PY) -m devtools.netfleet status

fleet-stop:
	@$(PY) -m devtools.fleet stop
	@$(PY) -m devtools.netfleet stop

# The main job end to end: facts from every server of the local fleet, tags from the rules
# into the store (var/dbfleet.db unless DBFLEET_STORE_URL), the store as an inventory with tag
# groups, one database's profile; then the nightly backup through the runner service (dbfleet
# up): an inspection job, a plan preview against the window, the backup in lanes and its timeline;
# last, the nightly backup across the SSH fleet (namespace hosts) in lanes over two worker hosts.
demo: fleet
	ansible-playbook -i inventories/local_fleet.yml playbooks/collect_facts.yml
	ansible-playbook -i inventories/local_fleet.yml playbooks/inspect.yml
	ansible-inventory -i inventories/fleet.fleet.yml --graph
	ansible-playbook -i inventories/fleet.fleet.yml playbooks/collect_facts.yml --limit tag_replica
	dbfleet hosts list
	dbfleet hosts profile replica
	scripts/demo_nightly_backup.sh
	$(PY) -m devtools.ssh_demo

# Two pytest runs side by side: the tests that need a fleet, and the others (scripts/run_tests.sh;
# DBFLEET_TEST_SERIAL=1 for one run). No test collected at all is a failure: it proves nothing.
test: setup
	@PY=$(PY) scripts/run_tests.sh $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: fleet
	$(PY) bench/facts.py
	$(PY) bench/inventory.py
	$(PY) bench/rules.py
	$(PY) bench/runner.py
	$(PY) bench/plans.py
	$(PY) bench/agent.py
	$(PY) bench/scale.py
	$(PY) bench/prune.py
	$(PY) bench/metrics.py
	$(PY) bench/ssh.py
	$(PY) bench/portal.py
	$(PY) bench/recovery.py

collection: setup
	ansible-galaxy collection build --force --output-path var/

clean:
	-$(PY) -m devtools.fleet stop
	-$(PY) -m devtools.netfleet stop
	rm -rf var .pytest_cache
