#pragma once
// The request bodies of the OpenAI-compatible endpoints, parsed and validated into typed values. Unknown fields are
// ignored (clients send vendor extras); a known field with a wrong type or out of range is an ApiError 400 naming
// the field. Pure functions of the body and the limits: the fuzz target and the server share them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/chat_template.h"

namespace tessera::frontend {

struct RequestLimits {
  int vocab_size = 0;          // token ids in prompts must be below it
  int max_n = 16;              // choices per prompt (n)
  int max_choices = 64;        // choices per request: n times the number of prompts
  int max_prompts = 64;        // prompts in one /v1/completions request
  int max_messages = 1024;     // messages in one chat request
  int max_stop_strings = 16;
  int max_stop_length = 256;   // bytes per stop string
};

struct GenerationParams {
  std::optional<int> max_tokens;   // absent: up to the context length (chat) or 16 (completions, as OpenAI)
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;                   // 0 or -1: off
  float min_p = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int n = 1;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<int> logprobs;     // top alternatives per token (0..20); absent: no logprobs
  bool echo = false;               // completions: the prompt is part of the text (and of the logprobs)
  bool ignore_eos = false;
  bool stream = false;
  bool include_usage = false;      // stream_options.include_usage
  bool skip_special_tokens = true;
  bool return_tokens_as_token_ids = false;  // logprobs name tokens "token_id:<id>" (vLLM's extension)
  std::string user;
};

struct ChatRequestBody {
  std::optional<std::string> model;
  std::vector<runtime::ChatMessage> messages;
  bool add_generation_prompt = true;
  GenerationParams params;
};

struct PromptInput {
  std::string text;            // when !is_ids
  std::vector<int32_t> ids;    // when is_ids
  bool is_ids = false;
};

struct CompletionRequestBody {
  std::optional<std::string> model;
  std::vector<PromptInput> prompts;
  GenerationParams params;
};

struct TokenizeRequestBody {
  std::optional<std::string> model;
  std::optional<std::string> prompt;
  std::vector<runtime::ChatMessage> messages;  // used when prompt is absent
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
};

struct DetokenizeRequestBody {
  std::optional<std::string> model;
  std::vector<int32_t> tokens;
};

ChatRequestBody parse_chat_request(std::string_view body, const RequestLimits& limits);
CompletionRequestBody parse_completion_request(std::string_view body, const RequestLimits& limits);
TokenizeRequestBody parse_tokenize_request(std::string_view body, const RequestLimits& limits);
DetokenizeRequestBody parse_detokenize_request(std::string_view body, const RequestLimits& limits);

}  // namespace tessera::frontend
