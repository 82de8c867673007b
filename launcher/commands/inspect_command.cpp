// `tessera inspect MODEL [--tp N --pp M] [--json]`: what a model is and what each rank of a layout would hold,
// read from the file's metadata and tensor headers only (no weights are read, no MPI is started). A layout the
// engine would refuse is reported with the engine's own message and exit code 2, so a script can try layouts.
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/commands/commands.h"
#include "launcher/config_overrides.h"
#include "runtime/chat/chat_template.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_summary.h"
#include "runtime/model/model_tokenizer.h"
#include "runtime/model/pipeline_partition.h"

namespace tessera::launcher {
namespace {

using nlohmann::json;
using runtime::ModelConfig;

constexpr int kInvalidLayoutExit = 2;

struct InspectOptions {
  std::string model;
  int tp = 1;
  int pp = 1;
  std::string pp_layers;                // as `tessera generate --pp-layers`: "", "auto" or "19,11"
  std::string weight_dtype = "native";  // as `tessera generate --weight-dtype`: how the rank keeps its matrices
  bool json = false;
};

// The shortest text that reads back as the same float ("1e-05", not 9.99999974737875e-06); whole numbers in
// positional notation ("100000", not "1e+05").
std::string float_text(float value) {
  char buf[64];
  const bool whole = std::abs(value) < 1e15f && value == std::trunc(value);
  const auto result = whole ? std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed)
                            : std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}
double float_json(float value) { return std::strtod(float_text(value).c_str(), nullptr); }

std::string bytes_text(uint64_t bytes) {
  char buf[32];
  const auto b = static_cast<double>(bytes);
  if (bytes < 1'000'000) std::snprintf(buf, sizeof(buf), "%.1f kB", b / 1e3);
  else if (bytes < 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.2f GB", b / 1e9);
  return buf;
}

std::string grouped(int64_t n) {  // 134515008 -> "134,515,008"
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Half-open [begin, end) shown inclusive, as `tessera generate` prints layer ranges.
std::string range_text(int64_t begin, int64_t end) {
  return end <= begin ? "-" : std::to_string(begin) + "-" + std::to_string(end - 1);
}
json range_json(int64_t begin, int64_t end) { return {{"begin", begin}, {"end", end}}; }

// Token texts can hold newlines and other control bytes ("\n" tokens); show them escaped on one line.
std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char ch : text) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

json config_json(const ModelConfig& c) {
  json scaling = {{"type", "none"}};
  if (c.rope_scaling.type == runtime::RopeScalingType::kLinear) {
    scaling = {{"type", "linear"}, {"factor", float_json(c.rope_scaling.factor)}};
  } else if (c.rope_scaling.type == runtime::RopeScalingType::kLlama3) {
    scaling = {{"type", "llama3"},
               {"factor", float_json(c.rope_scaling.factor)},
               {"low_freq_factor", float_json(c.rope_scaling.low_freq_factor)},
               {"high_freq_factor", float_json(c.rope_scaling.high_freq_factor)},
               {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  }
  return {{"architecture", c.architecture}, {"name", c.name}, {"num_layers", c.num_layers},
          {"hidden_size", c.hidden_size}, {"num_heads", c.num_heads}, {"num_kv_heads", c.num_kv_heads},
          {"head_dim", c.head_dim}, {"intermediate_size", c.intermediate_size}, {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.max_position_embeddings}, {"rope_theta", float_json(c.rope_theta)},
          {"rope_scaling", scaling}, {"rms_norm_eps", float_json(c.rms_norm_eps)},
          {"tie_word_embeddings", c.tie_word_embeddings}, {"attention_qkv_bias", c.attention_qkv_bias},
          {"bos_token_id", c.bos_token_id ? json(*c.bos_token_id) : json(nullptr)},
          {"eos_token_ids", c.eos_token_ids}, {"parameter_count", c.parameter_count()}};
}

std::string rope_scaling_text(const runtime::RopeScaling& s) {
  switch (s.type) {
    case runtime::RopeScalingType::kNone: return "none";
    case runtime::RopeScalingType::kLinear: return "linear, factor " + float_text(s.factor);
    case runtime::RopeScalingType::kLlama3:
      return "llama3, factor " + float_text(s.factor) + " (low " + float_text(s.low_freq_factor) + ", high " +
             float_text(s.high_freq_factor) + ", original context " +
             std::to_string(s.original_max_position_embeddings) + ")";
  }
  return "unknown";
}

json weights_json(const runtime::WeightSummary& w) {
  json by_type = json::array();
  for (const auto& t : w.by_type) {
    by_type.push_back({{"type", t.storage_type}, {"tensors", t.tensors}, {"elements", t.elements},
                       {"stored_bytes", t.stored_bytes}});
  }
  return {{"tensors", w.tensors}, {"elements", w.elements}, {"stored_bytes", w.stored_bytes}, {"by_type", by_type}};
}

// The tokenizer section; a model whose tokenizer cannot be built is still inspectable, with the reason shown.
json tokenizer_json(const std::filesystem::path& model) {
  std::unique_ptr<runtime::Tokenizer> tok;
  try {
    tok = runtime::load_model_tokenizer(model);
  } catch (const Error& e) {
    return {{"available", false}, {"error", e.what()}};
  }
  auto token = [&](std::optional<int32_t> id) -> json {
    if (!id) return nullptr;
    return {{"id", *id}, {"text", tok->token_text(*id)}};
  };
  json end_ids = json::array();
  for (int32_t id : tok->end_of_generation_ids()) end_ids.push_back(token(id));
  json chat = {{"present", false}};
  if (const auto& text = tok->spec().chat_template) {
    chat = {{"present", true}, {"first_line", text->substr(0, text->find('\n'))}};
    try {
      chat["family"] = std::string(runtime::chat_family_name(runtime::detect_chat_family(*text)));
    } catch (const Error&) {
      chat["family"] = nullptr;  // a template none of Tessera's families matches
    }
  }
  const bool byte_level = tok->model() == runtime::TokenizerModel::kByteLevelBpe;
  return {{"available", true},
          {"model", byte_level ? "byte-level BPE" : "SentencePiece BPE"},
          {"pre_tokenizer", tok->spec().pre_tokenizer},
          {"vocab_size", tok->vocab_size()},
          {"bos", token(tok->bos_id())},
          {"eos", token(tok->eos_id())},
          {"pad", token(tok->pad_id())},
          {"unk", token(tok->unk_id())},
          {"end_of_generation", end_ids},
          {"chat_template", chat}};
}

json layout_json(const runtime::ModelSource& source, parallel::ParallelLayout& layout,
                 const runtime::PipelineLayers& partition, kernels::cpu::WeightFormat format) {
  json out = {{"tp", layout.tp}, {"pp", layout.pp}, {"weight_dtype", kernels::cpu::weight_format_name(format)}};
  std::vector<runtime::RankFootprint> ranks;
  try {
    layout = runtime::resolve_pipeline_layout(source.config, layout.tp, layout.pp, partition);
    if (!layout.stage_layer_counts.empty()) out["pp_layers"] = layout.stage_layer_counts;
    ranks = runtime::plan_rank_footprints(source.config, *source.weights, layout, format);
  } catch (const Error& e) {
    out["valid"] = false;
    out["error"] = e.what();
    return out;
  }
  json rows = json::array();
  uint64_t held = 0, stored = 0;
  for (const auto& r : ranks) {
    rows.push_back({{"rank", r.rank}, {"stage", r.stage}, {"tp_rank", r.tp_rank},
                    {"layers", range_json(r.layers.begin, r.layers.end)},
                    {"q_heads", range_json(r.shard.q_head_begin, r.shard.q_head_end)},
                    {"kv_heads", range_json(r.shard.kv_head_begin, r.shard.kv_head_end)},
                    {"ffn", range_json(r.shard.ffn_begin, r.shard.ffn_end)},
                    {"vocab", range_json(r.shard.vocab_begin, r.shard.vocab_end)},
                    {"first_stage", r.first_stage}, {"last_stage", r.last_stage},
                    {"held_bytes", r.held_bytes}, {"stored_bytes", r.stored_bytes}});
    held += r.held_bytes;
    stored += r.stored_bytes;
  }
  out["valid"] = true;
  out["ranks"] = rows;
  out["total_held_bytes"] = held;
  out["total_stored_bytes"] = stored;
  return out;
}

void print_model(const std::string& path, const json& model, const runtime::ModelConfig& c, const json& weights,
                 const std::string& described) {
  std::printf("model: %s\n  source            %s\n", path.c_str(), described.c_str());
  std::printf("  architecture      %s\n  name              %s\n", c.architecture.c_str(), c.name.c_str());
  std::printf("  layers            %d\n  hidden            %d\n", c.num_layers, c.hidden_size);
  std::printf("  heads / KV heads  %d / %d\n  head_dim          %d\n", c.num_heads, c.num_kv_heads, c.head_dim);
  std::printf("  FFN               %d\n  vocab             %d\n", c.intermediate_size, c.vocab_size);
  std::printf("  context length    %d\n", c.max_position_embeddings);
  std::printf("  RoPE theta        %s\n  RoPE scaling      %s\n", float_text(c.rope_theta).c_str(),
              rope_scaling_text(c.rope_scaling).c_str());
  std::printf("  RMS eps           %s\n", float_text(c.rms_norm_eps).c_str());
  std::printf("  tied embeddings   %s\n  QKV bias          %s\n", c.tie_word_embeddings ? "yes" : "no",
              c.attention_qkv_bias ? "yes" : "no");
  std::printf("  BOS id            %s\n", c.bos_token_id ? std::to_string(*c.bos_token_id).c_str() : "none");
  std::string eos;
  for (int id : c.eos_token_ids) eos += (eos.empty() ? "" : ", ") + std::to_string(id);
  std::printf("  EOS ids           %s\n", eos.empty() ? "none" : eos.c_str());
  const int64_t params = model["parameter_count"];
  std::printf("  parameters        %s (%.1fM)\n", grouped(params).c_str(), static_cast<double>(params) / 1e6);

  std::printf("\nweights: %s tensors, %s stored\n", grouped(weights["tensors"]).c_str(),
              bytes_text(weights["stored_bytes"]).c_str());
  for (const json& t : weights["by_type"]) {
    std::printf("  %-6s %5s tensors %14s elements %12s\n", t["type"].get<std::string>().c_str(),
                grouped(t["tensors"]).c_str(), grouped(t["elements"]).c_str(), bytes_text(t["stored_bytes"]).c_str());
  }
}

void print_tokenizer(const json& t) {
  if (!t["available"].get<bool>()) {
    std::printf("\ntokenizer: unavailable: %s\n", t["error"].get<std::string>().c_str());
    return;
  }
  std::printf("\ntokenizer: %s\n", t["model"].get<std::string>().c_str());
  std::printf("  pre-tokenizer     %s\n", t["pre_tokenizer"].get<std::string>().c_str());
  std::printf("  vocab size        %d\n", t["vocab_size"].get<int>());
  auto token = [](const json& tok) {
    if (tok.is_null()) return std::string("none");
    return std::to_string(tok["id"].get<int>()) + " \"" + printable(tok["text"]) + "\"";
  };
  for (const char* key : {"bos", "eos", "pad", "unk"}) {
    std::string label = key;
    for (char& ch : label) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::printf("  %-17s %s\n", label.c_str(), token(t[key]).c_str());
  }
  std::string ends;
  for (const json& tok : t["end_of_generation"]) ends += (ends.empty() ? "" : ", ") + token(tok);
  std::printf("  end of generation %s\n", ends.empty() ? "none" : ends.c_str());
  const json& chat = t["chat_template"];
  if (!chat["present"].get<bool>()) {
    std::printf("  chat template     none\n");
  } else if (chat["family"].is_null()) {
    std::printf("  chat template     unrecognised family; first line: %s\n",
                printable(chat["first_line"]).c_str());
  } else {
    std::printf("  chat template     %s\n", chat["family"].get<std::string>().c_str());
  }
}

void print_layout(const json& layout) {
  std::printf("\nlayout tp=%d pp=%d", layout["tp"].get<int>(), layout["pp"].get<int>());
  if (layout.contains("pp_layers")) {
    std::printf(" layers=%s", parallel::layer_counts_text(layout["pp_layers"].get<std::vector<int>>()).c_str());
  }
  if (!layout["valid"].get<bool>()) {
    std::printf(": invalid\n");
    return;
  }
  const std::string dtype = layout["weight_dtype"];
  std::printf(": %zu rank(s); weight bytes per rank as held in memory (matrices in %s) and as stored in the file\n",
              layout["ranks"].size(), dtype.c_str());
  std::printf("  %4s %5s %7s %-7s %-8s %-8s %-11s %-13s %10s %10s\n", "rank", "stage", "tp_rank", "layers", "q heads",
              "kv heads", "ffn", "vocab", "held", "stored");
  auto range = [](const json& r) { return range_text(r["begin"], r["end"]); };
  for (const json& r : layout["ranks"]) {
    std::printf("  %4d %5d %7d %-7s %-8s %-8s %-11s %-13s %10s %10s\n", r["rank"].get<int>(), r["stage"].get<int>(),
                r["tp_rank"].get<int>(), range(r["layers"]).c_str(), range(r["q_heads"]).c_str(),
                range(r["kv_heads"]).c_str(), range(r["ffn"]).c_str(), range(r["vocab"]).c_str(),
                bytes_text(r["held_bytes"]).c_str(), bytes_text(r["stored_bytes"]).c_str());
  }
  std::printf("  %-68s %10s %10s\n", "total", bytes_text(layout["total_held_bytes"]).c_str(),
              bytes_text(layout["total_stored_bytes"]).c_str());
}

int run_inspect(const InspectOptions& o) {
  kernels::cpu::parse_weight_format(o.weight_dtype);  // a bad value fails before the model is opened
  // So does a malformed --pp-layers; counts that do not fit the model make the layout invalid (below).
  const runtime::PipelineLayers partition = runtime::parse_pipeline_layers(o.pp_layers, o.pp);
  const runtime::ModelSource source = runtime::open_model_source(o.model);
  parallel::ParallelLayout layout{o.tp, o.pp, {}};
  const json model = config_json(source.config);
  const json weights = weights_json(runtime::summarize_weights(source.config, *source.weights));
  const json tokenizer = tokenizer_json(o.model);
  const json plan = layout_json(source, layout, partition, kernels::cpu::parse_weight_format(o.weight_dtype));
  if (o.json) {
    const json all = {{"path", o.model}, {"source", source.weights->describe()}, {"model", model},
                      {"weights", weights}, {"tokenizer", tokenizer}, {"layout", plan}};
    std::printf("%s\n", all.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    print_model(o.model, model, source.config, weights, source.weights->describe());
    print_tokenizer(tokenizer);
    print_layout(plan);
  }
  std::fflush(stdout);
  if (!plan["valid"].get<bool>()) {
    std::fprintf(stderr, "tessera: error: layout %s: %s\n", layout.to_string().c_str(),
                 plan["error"].get<std::string>().c_str());
    return kInvalidLayoutExit;
  }
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand(
      "inspect", "Describe a model (config, weights, tokenizer) and what each rank of a tp x pp layout would hold");
  auto options = std::make_shared<InspectOptions>();
  cmd->add_option("model", options->model, "Model: a .gguf file or a Hugging Face directory")->required();
  cmd->add_option("--tp", options->tp, "Tensor-parallel size of the layout to plan")->capture_default_str();
  cmd->add_option("--pp", options->pp, "Pipeline-parallel size (stages) of the layout to plan")->capture_default_str();
  cmd->add_option("--pp-layers", options->pp_layers, kPpLayersHelp);
  cmd->add_option("--weight-dtype", options->weight_dtype,
                  "How the ranks keep their projection matrices, as for generate: f32, bf16, q8_0 or native")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print the report as JSON");
  cmd->callback([&action, options] { action = [options] { return run_inspect(*options); }; });
}

}  // namespace tessera::launcher
