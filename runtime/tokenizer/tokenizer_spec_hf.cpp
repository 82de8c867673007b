#include "runtime/tokenizer/tokenizer_spec_hf.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/base/error.h"
#include "runtime/tokenizer/pre_tokenizer.h"

namespace tessera::runtime {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  TESSERA_CHECK(in.good(), path.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

std::string type_of(const json& node) { return node.is_object() ? node.value("type", std::string()) : std::string(); }

// Collects the split regexes of a ByteLevel pipeline (Split/Digits steps, then ByteLevel); any other step is an Error.
void byte_level_steps(const std::string& file, const json& node, TokenizerSpec& spec, bool& saw_byte_level) {
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& step : node.at("pretokenizers")) byte_level_steps(file, step, spec, saw_byte_level);
  } else if (type == "ByteLevel") {
    TESSERA_CHECK(!node.value("add_prefix_space", false), file,
                  ": ByteLevel pre-tokenizer with add_prefix_space is not supported");
    if (node.value("use_regex", true)) spec.pre_regexes.emplace_back(kGpt2SplitRegex);
    saw_byte_level = true;
  } else if (type == "Digits") {
    // individual_digits isolates every digit; otherwise runs of digits stay together.
    spec.pre_regexes.emplace_back(node.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Split") {
    const json& pattern = node.at("pattern");
    TESSERA_CHECK(pattern.contains("Regex"), file, ": Split pre-tokenizer with a plain string pattern is not supported");
    const std::string behavior = node.value("behavior", std::string("Isolated"));
    TESSERA_CHECK(behavior == "Isolated" && !node.value("invert", false), file, ": Split pre-tokenizer with behavior '",
                  behavior, "' is not supported (only Isolated)");
    spec.pre_regexes.push_back(pattern.at("Regex").get<std::string>());
  } else {
    fail(file, ": pre-tokenizer '", type, "' is not supported");
  }
}

std::optional<std::string> token_name(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& value = config.at(key);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value.at("content").get<std::string>();
  return std::nullopt;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_hf_json(const std::filesystem::path& tokenizer_json,
                                          const std::optional<std::filesystem::path>& tokenizer_config) {
  const std::string file = tokenizer_json.string();
  const json root = read_json(tokenizer_json);
  TokenizerSpec spec;
  try {
    const json& model = root.at("model");
    TESSERA_CHECK(type_of(model) == "BPE" || (!model.contains("type") && model.contains("merges")), file,
                  ": model type '", type_of(model), "' is not supported (only BPE)");
    TESSERA_CHECK(!root.contains("normalizer") || root.at("normalizer").is_null(), file, ": normalizer '",
                  type_of(root.at("normalizer")), "' is not supported");

    // Vocabulary: the model's, then added tokens at their ids (usually already in it).
    size_t size = 0;
    for (const auto& [text, id] : model.at("vocab").items()) size = std::max(size, id.get<size_t>() + 1);
    const json& added = root.contains("added_tokens") ? root.at("added_tokens") : json::array();
    for (const json& token : added) size = std::max(size, token.at("id").get<size_t>() + 1);
    TESSERA_CHECK(size > 0 && size < (size_t{1} << 31), file, ": vocabulary of ", size, " tokens");
    spec.tokens.assign(size, std::string());
    spec.token_types.assign(size, TokenType::kUnused);
    for (const auto& [text, id] : model.at("vocab").items()) {
      spec.tokens[id.get<size_t>()] = text;
      spec.token_types[id.get<size_t>()] = TokenType::kNormal;
    }
    for (const json& token : added) {
      const auto id = token.at("id").get<size_t>();
      spec.tokens[id] = token.at("content").get<std::string>();
      spec.token_types[id] = token.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
    }
    const auto find = [&](const std::string& text) -> std::optional<int> {
      for (size_t id = 0; id < spec.tokens.size(); ++id) {
        if (spec.tokens[id] == text && spec.token_types[id] != TokenType::kUnused) return static_cast<int>(id);
      }
      return std::nullopt;
    };

    if (model.contains("merges")) {
      for (const json& merge : model.at("merges")) {
        if (merge.is_string()) {
          spec.merges.push_back(merge.get<std::string>());
        } else {
          TESSERA_CHECK(merge.is_array() && merge.size() == 2, file, ": a merge is neither \"a b\" nor [a, b]");
          spec.merges.push_back(merge.at(0).get<std::string>() + " " + merge.at(1).get<std::string>());
        }
      }
    }
    spec.ignore_merges = model.value("ignore_merges", false);
    if (model.contains("unk_token") && model.at("unk_token").is_string()) {
      spec.unk_id = find(model.at("unk_token").get<std::string>());
    }

    const json pre = root.contains("pre_tokenizer") ? root.at("pre_tokenizer") : json();
    if (type_of(pre) == "Metaspace") {
      spec.model = TokenizerModel::kSentencePieceBpe;
      TESSERA_CHECK(pre.value("replacement", std::string("\xE2\x96\x81")) == "\xE2\x96\x81", file,
                    ": Metaspace replacement other than U+2581 is not supported");
      TESSERA_CHECK(!pre.value("split", true), file, ": Metaspace with split=true is not supported");
      const std::string scheme = pre.value("prepend_scheme", std::string("always"));
      TESSERA_CHECK(scheme == "first" || scheme == "never", file, ": Metaspace prepend_scheme '", scheme,
                    "' is not supported (first, never)");
      spec.add_space_prefix = scheme == "first";
      // Byte-fallback tokens: mark them so decode turns them back into bytes.
      for (size_t id = 0; id < spec.tokens.size(); ++id) {
        const std::string& t = spec.tokens[id];
        if (spec.token_types[id] == TokenType::kNormal && t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>') {
          spec.token_types[id] = TokenType::kByte;
        }
      }
      spec.pre_tokenizer = "metaspace";
    } else {
      bool saw_byte_level = false;
      byte_level_steps(file, pre, spec, saw_byte_level);
      TESSERA_CHECK(saw_byte_level, file, ": pre-tokenizer '", type_of(pre), "' has no ByteLevel step");
      spec.model = TokenizerModel::kByteLevelBpe;
      if (spec.pre_regexes.empty()) spec.pre_regexes.emplace_back(R"([\s\S]+)");  // ByteLevel without a regex
      spec.pre_tokenizer = "hf";
    }

    // BOS/EOS as the post-processor adds them.
    const json post = root.contains("post_processor") ? root.at("post_processor") : json();
    if (type_of(post) == "TemplateProcessing") {
      const json& single = post.at("single");
      for (size_t i = 0; i < single.size(); ++i) {
        if (!single[i].contains("SpecialToken")) continue;
        const auto id = find(single[i].at("SpecialToken").at("id").get<std::string>());
        if (!id) continue;
        if (i == 0) {
          spec.add_bos = true;
          spec.bos_id = id;
        } else if (i + 1 == single.size()) {
          spec.add_eos = true;
          spec.eos_id = id;
        }
      }
    }
  } catch (const json::exception& e) {
    fail(file, ": unexpected tokenizer.json layout: ", e.what());
  }

  if (tokenizer_config) {
    const std::string config_file = tokenizer_config->string();
    const json config = read_json(*tokenizer_config);
    const auto id_of = [&](const char* key) -> std::optional<int> {
      const auto name = token_name(config, key);
      if (!name) return std::nullopt;
      for (size_t id = 0; id < spec.tokens.size(); ++id) {
        if (spec.tokens[id] == *name) return static_cast<int>(id);
      }
      fail(config_file, ": ", key, " '", *name, "' is not in the vocabulary of ", file);
    };
    if (auto id = id_of("bos_token")) spec.bos_id = id;
    if (auto id = id_of("eos_token")) spec.eos_id = id;
    if (auto id = id_of("unk_token")) spec.unk_id = id;
    if (auto id = id_of("pad_token")) spec.pad_id = id;
    if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean()) {
      spec.add_bos = config.at("add_bos_token").get<bool>();
    }
    if (config.contains("add_eos_token") && config.at("add_eos_token").is_boolean()) {
      spec.add_eos = config.at("add_eos_token").get<bool>();
    }
    if (config.contains("chat_template")) {
      const json& chat = config.at("chat_template");
      if (chat.is_string()) {
        spec.chat_template = chat.get<std::string>();
      } else if (chat.is_array()) {  // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        for (const json& entry : chat) {
          if (entry.value("name", std::string()) == "default") spec.chat_template = entry.value("template", std::string());
        }
      }
    }
    TESSERA_CHECK(!spec.add_bos || spec.bos_id, config_file, ": add_bos_token is set but there is no bos_token");
    TESSERA_CHECK(!spec.add_eos || spec.eos_id, config_file, ": add_eos_token is set but there is no eos_token");
  }
  return spec;
}

}  // namespace tessera::runtime
