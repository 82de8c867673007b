#pragma once
// Turns the command line's prompt into token ids: raw text (with the tokenizer's BOS rule) or, with --chat, the
// model's chat template applied to a system + user message.
#include <vector>

#include "launcher/generation_options.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tessera::launcher {

std::vector<int32_t> build_prompt(const runtime::Tokenizer& tokenizer, const GenerationOptions& options);

}  // namespace tessera::launcher
