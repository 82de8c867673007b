# The two commands of the README, and the steps they are made of. Every target is safe to re-run.
#   make demo   install dependencies, build, fetch the default model, serve it on 6 ranks and ask it with openai
#   make test   install dependencies, build, fetch the default model, run every test (CTest)
#   make serve  the same server in the foreground (Ctrl-C stops it)
#   make bundle the air-gapped tarball (cluster/bundle/make-bundle.sh)
BUILD_DIR ?= build
FUZZ_BUILD_DIR ?= $(CURDIR)/build-fuzz
FUZZ_SECONDS ?= 30
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEMO_RANKS ?= 6
DEMO_TP ?= 3
DEMO_PP ?= 2
DEMO_PORT ?= 8000
DEMO_PROMPT ?= What is the capital of France? Answer in one sentence.
DEMO_TOKENS ?= 48

MPIRUN := mpirun --oversubscribe --bind-to none $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
# CI=true turns warnings into errors; with nvcc present it also makes the CUDA backend required
# (cmake/TesseraOptions.cmake: every .cu compiles, or the configure fails).
ifeq ($(CI),true)
  CMAKE_FLAGS += -DTESSERA_WERROR=ON
endif

.PHONY: demo serve generate test deps build model vocabs fuzz-build fuzz bundle clean

deps:
	bash scripts/install-deps.sh

model: deps
	bash scripts/fetch-model.sh >/dev/null

# Vocabulary-only GGUF files (Llama-2 SentencePiece, Llama-3, Qwen2) for the tokenizer golden tests.
vocabs: deps
	bash scripts/fetch-vocabs.sh

# The clang + ASan/UBSan build of the libFuzzer targets that the fuzz.* tests run.
fuzz-build: deps
	BUILD_DIR=$(FUZZ_BUILD_DIR) JOBS=$(JOBS) bash scripts/run-fuzzers.sh --build-only

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) $(TEST_CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build model
	.venv/bin/python scripts/serve_demo.py $(BUILD_DIR)/launcher/tessera \
	  "$$(bash scripts/fetch-model.sh 2>/dev/null | tail -n1)" $(DEMO_RANKS) $(DEMO_TP) $(DEMO_PP) $(DEMO_PORT)

serve: build model
	$(MPIRUN) -np $(DEMO_RANKS) $(BUILD_DIR)/launcher/tessera serve \
	  --model "$$(bash scripts/fetch-model.sh 2>/dev/null | tail -n1)" --tp $(DEMO_TP) --pp $(DEMO_PP) --port $(DEMO_PORT)

# One prompt from the command line, no server.
generate: build model
	$(MPIRUN) -np $(DEMO_RANKS) $(BUILD_DIR)/launcher/tessera generate \
	  --model "$$(bash scripts/fetch-model.sh 2>/dev/null | tail -n1)" --tp $(DEMO_TP) --pp $(DEMO_PP) \
	  --chat --prompt "$(DEMO_PROMPT)" --max-tokens $(DEMO_TOKENS)

# The model and vocab files were just fetched, so a test that finds one absent fails instead of skipping
# (TESSERA_REQUIRE_TEST_DATA=1, tests/README.md).
test: TEST_CMAKE_FLAGS = -DTESSERA_FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) -DTESSERA_FUZZ_SECONDS=$(FUZZ_SECONDS)
test: fuzz-build build model vocabs
	cd $(BUILD_DIR) && TESSERA_REQUIRE_TEST_DATA=1 ctest --output-on-failure -j $(JOBS)

fuzz: deps
	BUILD_DIR=$(FUZZ_BUILD_DIR) bash scripts/run-fuzzers.sh $(FUZZ_SECONDS)

# The relocatable bundle for air-gapped clusters (cluster/bundle/): $(BUILD_DIR)/bundle/tessera-<version>-<arch>.tar.gz
# with the binary, the shared libraries a bare node lacks, env.sh, the configs and a SHA-256 manifest.
# BUNDLE_CUDA_LIBS=0 leaves the CUDA runtime, cuBLASLt and NCCL out; BUNDLE_COMPRESS=zst writes .tar.zst.
bundle: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tessera
	bash cluster/bundle/make-bundle.sh $(BUILD_DIR)/launcher/tessera $(BUILD_DIR)/bundle

clean:
	rm -rf $(BUILD_DIR)
