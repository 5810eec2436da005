# detr-tui: `make run` opens the explorer, `make test` runs the whole suite.
SWIFT ?= swift
ARGS ?=

.PHONY: run test build bench bootstrap clean

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build -c release --product detr-tui

run: build
	@.build/release/detr-tui $(ARGS)

# Tests run on an optimised build: the numeric golden tests do real forward passes. The test build (which adds
# -enable-testing) lives in .build-test, so that `make run` and `make test` do not rebuild each other's objects.
test: bootstrap
	$(SWIFT) test -c release -Xswiftc -enable-testing --scratch-path .build-test

bench: build
	@.build/release/detr-tui bench ops

clean:
	rm -rf .build .build-test
