// Tokenizer benchmark: time to open the SmolLM2 GGUF and build its tokenizer, then single-thread encode and
// decode throughput on two corpora:
//   mixed   tests/fixtures/tokenizer/corpus.json (prose, code, CJK, emoji, special tokens, odd Unicode) repeated
//           to the requested size: realistic repetition, so the word cache helps;
//   unique  generated words that almost never repeat: the merge loop runs for nearly every piece.
// Usage: tessera_bench_tokenizer [--model PATH] [--corpus corpus.json] [--mb MEGABYTES] [--repeat N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "runtime/model/gguf_file.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<std::string> mixed_corpus(const std::filesystem::path& file, size_t bytes) {
  std::ifstream in(file);
  if (!in) {
    std::fprintf(stderr, "cannot open %s (pass --corpus)\n", file.c_str());
    std::exit(2);
  }
  const auto strings = nlohmann::json::parse(in).at("strings").get<std::vector<std::string>>();
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < bytes) {
    for (const std::string& s : strings) {
      docs.push_back(s);
      total += s.size();
    }
  }
  return docs;
}

std::vector<std::string> unique_corpus(size_t bytes) {
  std::mt19937 rng(7);
  const std::string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const char* extras[] = {"\xC3\xA9", "\xC3\xB1", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", ",", ".", "'s", "0", "42"};
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < bytes) {
    std::string doc;
    while (doc.size() < 2000) {
      doc += ' ';
      const int length = 3 + static_cast<int>(rng() % 9);
      for (int i = 0; i < length; ++i) doc += letters[rng() % letters.size()];
      if (rng() % 4 == 0) doc += extras[rng() % 9];
      if (rng() % 20 == 0) doc += '\n';
    }
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

void run(const char* name, const tessera::runtime::Tokenizer& tok, const std::vector<std::string>& docs, int repeat) {
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  double best_encode = 1e30;
  double best_decode = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeat; ++r) {
    std::vector<std::vector<int32_t>> ids;
    ids.reserve(docs.size());
    auto start = Clock::now();
    for (const auto& d : docs) ids.push_back(tok.encode(d, false));
    best_encode = std::min(best_encode, seconds_since(start));
    tokens = 0;
    size_t decoded = 0;
    start = Clock::now();
    for (const auto& i : ids) {
      tokens += i.size();
      decoded += tok.decode(i, false).size();
    }
    best_decode = std::min(best_decode, seconds_since(start));
    if (decoded == 0) std::puts("");  // keep the decode from being optimised away
  }
  const double mb = static_cast<double>(bytes) / 1e6;
  std::printf("%-7s %7.2f MB %9zu tokens  encode %7.2f MB/s (%.2f Mtok/s)  decode %8.2f MB/s\n", name, mb, tokens,
              mb / best_encode, static_cast<double>(tokens) / 1e6 / best_encode, mb / best_decode);
}

}  // namespace

int main(int argc, char** argv) {
  const char* home = std::getenv("HOME");
  std::filesystem::path model = std::filesystem::path(home ? home : "/root") /
                                ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (const char* env = std::getenv("TESSERA_MODEL_PATH")) model = env;
  std::filesystem::path corpus = "tests/fixtures/tokenizer/corpus.json";
  double megabytes = 8;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--model") model = argv[i + 1];
    else if (flag == "--corpus") corpus = argv[i + 1];
    else if (flag == "--mb") megabytes = std::atof(argv[i + 1]);
    else if (flag == "--repeat") repeat = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    const auto start = Clock::now();
    const auto file = tessera::runtime::GgufFile::open(model);
    const double open_s = seconds_since(start);
    const tessera::runtime::Tokenizer tok(tessera::runtime::tokenizer_spec_from_gguf(*file));
    const double total_s = seconds_since(start);
    std::printf("open %s: %.3f s; + build tokenizer (%d tokens): %.3f s total\n", model.filename().c_str(), open_s,
                tok.vocab_size(), total_s);
    const auto bytes = static_cast<size_t>(megabytes * 1e6);
    run("mixed", tok, mixed_corpus(corpus, bytes), repeat);
    run("unique", tok, unique_corpus(bytes), repeat);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
