#pragma once
// Model integrity (`--verify-sha256 <manifest-or-hash>` of `tessera serve` and `tessera generate`, `verify_sha256:`
// in YAML): while a rank loads its model files it hashes them on a background thread and checks them against what
// the operator expects, so a truncated download, a bit flip on a shared file system or a swapped file fails the job
// at load time with one message naming the file, the expected and the actual hash (Replica::create starts it when the
// collective load phase begins and waits for it before the replica is ready, so every rank fails together, with the
// integrity message even when the load failed too).
//
// The argument is either
//   - a manifest as `sha256sum` writes it: lines "<64 hex>  <name>" (or "<64 hex> *<name>", binary mode; blank lines
//     and lines starting with '#' are skipped). A name is looked up first as a path relative to the manifest's
//     directory (absolute names as they are), then by its basename: `sha256sum *.safetensors > model.sha256` in the
//     model directory and a manifest kept elsewhere both work. Two entries with the same basename and different
//     hashes make a basename lookup ambiguous (an error); or
//   - one 64-hex hash, for a single-file model (a .gguf file, a directory with one model.safetensors).
// Checked: every weight file the rank maps (the .gguf file; model.safetensors or every shard the index names), each
// of which must be in the manifest; and the other files the runtime reads from a model directory (config.json,
// generation_config.json, the index, tokenizer.json, tokenizer_config.json) when the manifest lists them.
#include <cstdint>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::runtime {

struct Sha256ManifestEntry {
  std::string sha256;  // lower-case hex
  std::string name;    // as written (unescaped)
  int line = 0;
};

struct Sha256Expectation {
  std::string source;                          // the manifest's path, or "--verify-sha256" for a bare hash
  std::filesystem::path directory;             // where relative names resolve (the manifest's directory)
  std::vector<Sha256ManifestEntry> entries;    // a manifest's lines
  std::optional<std::string> single_sha256;    // a bare hash: the one weight file's
};

// Whether `text` is 64 hex digits (either case).
bool is_sha256_hex(std::string_view text);
// Parses sha256sum's output; throws tessera::Error naming `source` and the line on a malformed line, and when
// there is no entry at all.
Sha256Expectation parse_sha256_manifest(std::string_view text, const std::string& source,
                                        const std::filesystem::path& directory);
// The --verify-sha256 argument: a 64-hex hash, or the path of a manifest file (read and parsed). Throws.
Sha256Expectation load_sha256_expectation(const std::string& argument);
// The expected hash of `file`, nullopt when the manifest does not list it; throws on an ambiguous basename.
std::optional<std::string> expected_sha256(const Sha256Expectation& expectation, const std::filesystem::path& file);

// The weight files opening `model` maps: {the .gguf file}, {model.safetensors} or the index's shards (sorted,
// each once); none for dummy:<preset>. Throws like open_model_source on a path that is neither.
std::vector<std::filesystem::path> model_weight_files(const std::filesystem::path& model);

struct Sha256Verification {
  size_t files = 0;
  uint64_t bytes = 0;
  double seconds = 0.0;
  int threads = 1;
  std::string backend;  // "sha-ni" / "portable"
  std::string summary() const;  // "2 files, 94.0 MiB in 0.06 s (1580 MB/s, sha-ni, 1 thread)"
};

// Hashes what `model` maps (up to `max_threads` files at once) and checks it against `expectation`. Throws
// tessera::Error: "model integrity check failed: FILE: expected HEX, got HEX (MANIFEST)", or "... FILE is not in
// MANIFEST" (checked before anything is hashed), naming the first failing file.
Sha256Verification verify_model_sha256(const std::filesystem::path& model, const Sha256Expectation& expectation,
                                       int max_threads);

// verify_model_sha256 on a background thread, started now, so that hashing overlaps loading (Replica::create maps
// and loads the weights meanwhile, then waits). The hash reads each file with its own read() calls, independent of
// any mapping of it. get() returns the result or rethrows its tessera::Error; the future's destructor waits for the
// thread (std::async), so dropping it never leaves the thread running past the arguments' owner.
std::future<Sha256Verification> start_model_sha256_verification(std::filesystem::path model,
                                                                Sha256Expectation expectation, int max_threads);

}  // namespace tessera::runtime
