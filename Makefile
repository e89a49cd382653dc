# Makefile — the README's two commands and a few conveniences around the CMake build.
#   make run    build heed and generate a continuation of a default prompt with the embedded default
#               model (models/default, trained by heed train)
#   make test   the whole test suite: a Release build under ctest, then again under
#               AddressSanitizer + UndefinedBehaviorSanitizer (clang), then each fuzz target briefly
# Both install what is missing first (scripts/deps.sh).
BUILD ?= build
SAN_BUILD ?= build-san
JOBS ?= $(shell nproc)

.PHONY: all deps build run test test-release test-san bench install clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

PROMPT ?= And it came to pass
run: build
	./$(BUILD)/heed run -p "$(PROMPT)" -n 64 --temp 0.8 --top-k 40 --seed 1

test: test-release test-san

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The sanitizer build is also the fuzz build (clang, coverage-instrumented): after the suite passes
# under ASan + UBSan, each libFuzzer target runs for FUZZ_SECONDS.
FUZZ_SECONDS ?= 15
test-san: deps
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DHEED_SANITIZE=ON -DHEED_FUZZ=ON >/dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS)
	cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)
	HEED_FUZZ_BUILD=$(CURDIR)/$(SAN_BUILD) bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	./$(BUILD)/heed bench attn

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
