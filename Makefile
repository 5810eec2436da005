# detr-tui: `make run` opens the explorer, `make test` runs the whole suite.
SWIFT ?= swift
ARGS ?=

.PHONY: run test build bench bootstrap clean fuzz

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

# Coverage-guided fuzzing, not part of `make test` or CI: `make fuzz SECONDS=60 TARGET=unpickler` (TARGET=all runs
# every target in turn; RUNS=1000000 stops each after that many inputs). The libFuzzer targets in Tests/Fuzz are executable targets that Package.swift declares only
# when DETR_TUI_FUZZ is set (a nested package depending on this one by path would have to resolve the dependencies
# again); they are built with swiftc's -sanitize=fuzzer,address in their own scratch path, .build-fuzz, and each
# runs on a working copy of its seed corpus (Tests/Fuzz/Corpus/<target>; the onnx target also starts from the op
# fixtures and the smallest whole-model golden), whose inputs it extends.
FUZZ_TARGETS := unpickler torchzip safetensors yaml image onnx
TARGET ?= all
SECONDS ?= 60
RUNS ?= -1
FUZZ_RUN := $(if $(filter all,$(TARGET)),$(FUZZ_TARGETS),$(TARGET))
fuzz: bootstrap
	@for t in $(FUZZ_RUN); do \
		DETR_TUI_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
			-Xswiftc -enable-testing --product fuzz-$$t || exit 1; \
	done
	@for t in $(FUZZ_RUN); do \
		mkdir -p .build-fuzz/corpus/$$t .build-fuzz/artifacts && cp -n Tests/Fuzz/Corpus/$$t/* .build-fuzz/corpus/$$t/ ; \
		if [ $$t = onnx ]; then cp -n Tests/Fixtures/onnx/ops/*.onnx Tests/Fixtures/onnx/two-grids-tiny.onnx .build-fuzz/corpus/onnx/; fi; \
		echo "== fuzz-$$t for $(SECONDS) s"; \
		LSAN_OPTIONS=suppressions=Tests/Fuzz/lsan.supp .build-fuzz/release/fuzz-$$t -artifact_prefix=.build-fuzz/artifacts/ -max_total_time=$(SECONDS) -runs=$(RUNS) -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
			-print_final_stats=1 .build-fuzz/corpus/$$t || exit 1; \
	done

clean:
	rm -rf .build .build-test .build-fuzz
