// Fuzzes the JSON bodies of the OpenAI-compatible endpoints through the parsing and validation the server runs
// (runtime/frontend/openai_request.h, called by OpenAiApi with the same RequestLimits): the first input byte picks
// the endpoint (chat completions, completions, tokenize, detokenize), the rest is the body. Defined behaviour:
//   - the only exception is tessera::Error (ApiError: a 4xx naming the field; the server answers it) — a JSON
//     library exception, std::out_of_range or a crash would reach the handler as a 500 or kill rank 0;
//   - what parses is within the limits: counts of messages, prompts, stop strings; token ids in the vocab.
// Seeds: tests/fuzz/corpus/fuzz_openai_request/ (first byte '0'..'3' then the body).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kernels/base/error.h"
#include "runtime/frontend/openai_request.h"

namespace {

using namespace tessera::frontend;

void check(bool condition) {
  if (!condition) std::abort();
}

void check_params(const GenerationParams& p, const RequestLimits& limits) {
  check(p.n >= 1 && p.n <= limits.max_n);
  check(static_cast<int>(p.stop.size()) <= limits.max_stop_strings);
  for (const auto& stop : p.stop) check(!stop.empty() && static_cast<int>(stop.size()) <= limits.max_stop_length);
  check(!p.max_tokens || *p.max_tokens >= 0);
  check(!p.logprobs || (*p.logprobs >= 0 && *p.logprobs <= 20));
}

void check_ids(const std::vector<int32_t>& ids, const RequestLimits& limits) {
  for (const int32_t id : ids) check(id >= 0 && id < limits.vocab_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RequestLimits limits;  // the server's defaults (ApiOptions), with SmolLM2's vocabulary
  limits.vocab_size = 49152;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] & 3) {
      case 0: {
        const ChatRequestBody chat = parse_chat_request(body, limits);
        check(static_cast<int>(chat.messages.size()) <= limits.max_messages);
        check_params(chat.params, limits);
        break;
      }
      case 1: {
        const CompletionRequestBody completion = parse_completion_request(body, limits);
        check(!completion.prompts.empty() && static_cast<int>(completion.prompts.size()) <= limits.max_prompts);
        check_params(completion.params, limits);
        for (const PromptInput& prompt : completion.prompts) {
          if (prompt.is_ids) check_ids(prompt.ids, limits);
        }
        break;
      }
      case 2: {
        const TokenizeRequestBody tokenize = parse_tokenize_request(body, limits);
        check(static_cast<int>(tokenize.messages.size()) <= limits.max_messages);
        break;
      }
      default: {
        const DetokenizeRequestBody detokenize = parse_detokenize_request(body, limits);
        check_ids(detokenize.tokens, limits);
        break;
      }
    }
  } catch (const tessera::Error&) {
    // A 400 with a message: what the server answers.
  }
  return 0;
}
