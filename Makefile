# pgfleet — see README.md.
#   make setup      install and start what the lab needs (Docker, debootstrap, ssh) as root
#   make demo       bring up a 3-host lab and run pgfleet on it
#   make test       unit tests (with -race) and end-to-end tests on lab hosts
#   make lab-up     start a lab (HOSTS=3 RELEASE=bullseye|bookworm|trixie, INIT=systemd for
#                   systemd as PID 1, PG=1 for hosts with PostgreSQL installed); files in .lab/
#   make lab-down   remove it
#   make bench      benchmarks: a simulated fleet of 201 hosts, then lab hosts (BENCHRUNS=3 measured runs each)
#   make check      gofmt, go vet, go mod tidy
#   make docs       regenerate docs/reference (markdown) and docs/man from the commands

SHELL   := /bin/bash
GO      ?= go
HOSTS   ?= 3
RELEASE ?= bookworm
LAB     ?= pgfleet-lab
INIT    ?=
PG      ?=
BIN     := bin/pgfleet
E2E_TIMEOUT ?= 80m

.PHONY: setup build test unit e2e lab-up lab-down demo bench check images docs

setup:
	./examples/lab/setup

build:
	$(GO) build -o $(BIN) ./cmd/pgfleet

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /internal/e2e)

# Every image the end-to-end tests use: bare hosts of each release, and
# bookworm hosts with PostgreSQL installed, with and without systemd.
images:
	$(GO) build -o bin/labctl ./examples/lab/labctl
	bin/labctl image -release bookworm
	bin/labctl image -release bookworm -pg
	bin/labctl image -release bookworm -pg -init systemd
	bin/labctl image -release trixie
	bin/labctl image -release bullseye

e2e: images
	$(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./internal/e2e/ 2>&1 | tee .e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; \
	  status=$${PIPESTATUS[0]}; \
	  if [ $$status -ne 0 ]; then echo "e2e: failed; the full log:"; cat .e2e.log; \
	    echo; echo "e2e: what failed (the full log is above):"; \
	    grep -E -- '--- FAIL|^panic|_test\.go:[0-9]+: ' .e2e.log | grep -v -E '_test\.go:[0-9]+: (pgfleet .*: exit [0-9]+|time=)' | tail -n 60; \
	    echo; echo "e2e: the tests that failed:"; grep -E -- '--- FAIL|^panic' .e2e.log; fi; \
	  if [ "$$CI" = "true" ] && grep -q -- '--- SKIP' .e2e.log; then echo "e2e: tests were skipped in CI"; grep -- '--- SKIP' .e2e.log; exit 1; fi; \
	  exit $$status

test: setup unit e2e

lab-up:
	$(GO) run ./examples/lab/labctl up -name $(LAB) -hosts $(HOSTS) -release $(RELEASE) -init "$(INIT)" $(if $(PG),-pg) -dir .lab

lab-down:
	$(GO) run ./examples/lab/labctl down -name $(LAB)

demo: setup build lab-up
	$(BIN) up .lab/inventory.yaml
	@echo
	$(BIN) status .lab/inventory.yaml
	@echo
	@echo "demo: the lab's cluster is up. Run $(BIN) up .lab/inventory.yaml again: nothing changes. make lab-down removes it."

BENCHRUNS ?= 3

BENCHLINES := '^(Benchmark|ok|FAIL|PASS)|runs:|s/median|primary.s data|rebuild /|switchover:|fleet:|floor:|converged:'

# First the simulated fleet (no Docker: 201 hosts served in-process), then
# the lab benchmarks.
bench: setup images
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 20m ./steps/ 2>&1 | grep -E $(BENCHLINES)
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 180m ./internal/e2e/ -runs $(BENCHRUNS) 2>&1 | \
	  grep -E $(BENCHLINES)

# The unit tests fail when the committed reference differs from what the
# commands give; this rewrites it.
docs:
	$(GO) test -count=1 -run '^TestReferenceDocsUpToDate$$' ./cmd/pgfleet -update

check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy -diff
