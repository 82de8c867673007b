#pragma once
// What the HTTP API knows about the model it serves and the limits that a request is checked against before it
// reaches the engine, so that an error known up front is an HTTP error, never a failed stream.
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tessera::frontend {

struct ServedModel {
  std::string name;                                  // the API's model id
  const runtime::Tokenizer* tokenizer = nullptr;     // null: the model takes token ids only
  std::optional<runtime::ChatTemplate> chat_template;
  std::vector<int32_t> end_of_generation_ids;        // stop ids unless ignore_eos
  int max_model_len = 0;                             // prompt + completion tokens
  int vocab_size = 0;
  int kv_block_size = 16;
  int64_t kv_blocks = 0;                             // the whole cache
  std::time_t created = 0;
};

}  // namespace tessera::frontend
