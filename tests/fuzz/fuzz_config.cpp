// Fuzzes the YAML config loader through the strict schema (launcher/config_schema.h, every section any command
// declares) and the option resolution of `tessera generate` and `tessera serve` (resolve_generation_options,
// resolve_serve_options: what a --config file goes through before anything runs). Defined behaviour on any bytes:
//   - the only exception is tessera::Error naming the file (a YAML syntax error, an unknown key, a value of the
//     wrong kind or out of range, an inconsistent option) — a yaml-cpp exception (BadConversion of a value the
//     schema let through, a non-scalar key) would reach the user as an unexplained failure.
// The input is written to a scratch file (the loader reads files) once per run. Seeds: tests/fuzz/corpus/fuzz_config/
// (the committed configs/*.yaml and a few edge cases).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "launcher/config_sections.h"
#include "launcher/generation_options.h"
#include "launcher/serve_options.h"

namespace {

using namespace tessera::launcher;

const std::string& scratch_file() {
  static const std::string path = "/tmp/tessera_fuzz_config_" + std::to_string(::getpid()) + ".yaml";
  return path;
}

template <class Options, class Add, class Resolve>
void resolve(Add add, Resolve resolve_options) {
  CLI::App app;
  Options options;
  add(app, options);
  app.parse(std::vector<std::string>{});
  options.config_file = scratch_file();
  try {
    resolve_options(app, options);
  } catch (const tessera::Error&) {
    // A message naming the file and the key: what the user sees.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    ConfigFile::load(scratch_file(), config_schema());
  } catch (const tessera::Error&) {
  }
  resolve<GenerationOptions>(add_generation_flags, resolve_generation_options);
  resolve<ServeOptions>(add_serve_flags, resolve_serve_options);
  return 0;
}
