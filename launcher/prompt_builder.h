#pragma once
// Turns the command line's prompt into token ids: raw text (with the tokenizer's BOS rule) or, with --chat, the
// model's chat template applied to a system + user message.
#include <string>
#include <vector>

#include "launcher/generation_options.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tessera::launcher {

std::vector<int32_t> build_prompt(const runtime::Tokenizer& tokenizer, const GenerationOptions& options);

// --prompt-ids: token ids separated by spaces or commas ("1 2 3"), each in [0, vocab_size). Throws naming the bad
// entry.
std::vector<int32_t> parse_prompt_ids(const std::string& text, int vocab_size);

}  // namespace tessera::launcher
