#include "runtime/tokenizer/tokenizer_spec_gguf.h"

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

std::optional<int> token_id(const GgufFile& file, std::string_view key, size_t vocab) {
  const std::optional<int64_t> id = file.get_int(key);
  if (!id) return std::nullopt;
  // Some converters write -1 (as int32) for "no such token"; treat it as absent.
  if (*id == -1) return std::nullopt;
  TESSERA_CHECK(*id >= 0 && static_cast<uint64_t>(*id) < vocab, file.description(), ": ", key, " = ", *id,
                " is outside the vocabulary of ", vocab, " tokens");
  return static_cast<int>(*id);
}

TokenType token_type(const GgufFile& file, int64_t value, size_t index) {
  // llama.cpp's LLAMA_TOKEN_TYPE_*: 0 is "undefined", which it treats as a normal token.
  if (value == 0) return TokenType::kNormal;
  TESSERA_CHECK(value >= 1 && value <= 6, file.description(), ": tokenizer.ggml.token_type[", index, "] = ", value,
                " (expected 0 to 6)");
  return static_cast<TokenType>(value);
}

// Pre-tokenizers of the Llama 3 family: llama.cpp's vocabulary loader takes a pre-token that is a whole vocabulary
// entry as is (ignore_merges, as Hugging Face's tokenizer.json says for these models) and prepends BOS by default.
bool is_llama3_family(const std::string& pre) {
  for (const char* name : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}) {
    if (pre == name) return true;
  }
  return false;
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& file) {
  TokenizerSpec spec;
  const std::optional<std::string> model = file.get_string("tokenizer.ggml.model");
  TESSERA_CHECK(model.has_value(), file.description(), ": no tokenizer.ggml.model (the file has no vocabulary)");
  if (*model == "gpt2") {
    spec.model = TokenizerModel::kByteLevelBpe;
  } else if (*model == "llama") {
    spec.model = TokenizerModel::kSentencePieceBpe;
  } else {
    fail(file.description(), ": tokenizer.ggml.model '", *model,
         "' is not supported (expected 'gpt2' for byte-level BPE or 'llama' for SentencePiece)");
  }
  spec.pre_tokenizer = file.get_string("tokenizer.ggml.pre").value_or("default");

  spec.tokens = file.get_string_array("tokenizer.ggml.tokens");
  TESSERA_CHECK(!spec.tokens.empty(), file.description(), ": tokenizer.ggml.tokens is missing or empty");
  const size_t vocab = spec.tokens.size();

  for (double score : file.get_float_array("tokenizer.ggml.scores")) spec.scores.push_back(static_cast<float>(score));
  TESSERA_CHECK(spec.scores.empty() || spec.scores.size() == vocab, file.description(), ": tokenizer.ggml.scores has ",
                spec.scores.size(), " entries for ", vocab, " tokens");

  const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
  TESSERA_CHECK(types.empty() || types.size() == vocab, file.description(), ": tokenizer.ggml.token_type has ",
                types.size(), " entries for ", vocab, " tokens");
  spec.token_types.reserve(types.size());
  for (size_t i = 0; i < types.size(); ++i) spec.token_types.push_back(token_type(file, types[i], i));

  spec.merges = file.get_string_array("tokenizer.ggml.merges");
  TESSERA_CHECK(spec.model != TokenizerModel::kByteLevelBpe || !spec.merges.empty(), file.description(),
                ": byte-level BPE vocabulary without tokenizer.ggml.merges");

  spec.bos_id = token_id(file, "tokenizer.ggml.bos_token_id", vocab);
  spec.eos_id = token_id(file, "tokenizer.ggml.eos_token_id", vocab);
  spec.unk_id = token_id(file, "tokenizer.ggml.unknown_token_id", vocab);
  spec.pad_id = token_id(file, "tokenizer.ggml.padding_token_id", vocab);

  // Defaults as in llama.cpp's vocabulary loader when the keys are absent: SentencePiece models prepend BOS
  // and a space, byte-level BPE models do neither, except the Llama 3 family, which prepends BOS.
  const bool spm = spec.model == TokenizerModel::kSentencePieceBpe;
  const bool llama3 = !spm && is_llama3_family(spec.pre_tokenizer);
  spec.ignore_merges = llama3;
  spec.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(spm || llama3);
  spec.add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  spec.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  spec.chat_template = file.get_string("tokenizer.chat_template");
  return spec;
}

}  // namespace tessera::runtime
