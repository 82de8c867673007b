#include "launcher/prompt_builder.h"

#include "kernels/base/error.h"

namespace tessera::launcher {

std::vector<int32_t> build_prompt(const runtime::Tokenizer& tokenizer, const GenerationOptions& o) {
  TESSERA_CHECK(!o.prompt.empty(), "the prompt is empty: pass --prompt TEXT");
  if (o.chat) fail("--chat: chat templates are not wired in yet");
  // The user's text is data: special-token spellings in it stay text.
  return tokenizer.encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
}

}  // namespace tessera::launcher
