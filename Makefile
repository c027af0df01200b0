# kr-serve: the two set-up commands are `make serve` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
PORT ?= 8080

.PHONY: all deps build serve test clean

all: build

deps:
	./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# Builds and starts the server on the bundled demo model (models/tiny-llama3).
serve: build
	$(BUILD)/bin/kr-serve serve --port $(PORT)

# Builds everything (warnings are errors) and runs the whole test suite.
test: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DKR_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	./scripts/prepare-tests.sh
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS) --timeout 600

clean:
	rm -rf $(BUILD)
