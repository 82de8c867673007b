// Parsing and validation of the API's request bodies: OpenAI's shapes accepted, unknown fields ignored, a known
// field with a wrong type or range rejected with a 400 that names it.
#include <gtest/gtest.h>

#include "runtime/frontend/api_error.h"
#include "runtime/frontend/openai_request.h"

namespace tessera::frontend {
namespace {

RequestLimits limits() {
  RequestLimits l;
  l.vocab_size = 1000;
  return l;
}

// The field an ApiError names, or "" when parsing succeeded.
template <class Parse>
std::string rejected_field(Parse parse, const std::string& body) {
  try {
    parse(body, limits());
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400) << body;
    return e.param().value_or("(none)");
  }
  return "";
}

std::string chat_error(const std::string& body) { return rejected_field(parse_chat_request, body); }
std::string completion_error(const std::string& body) { return rejected_field(parse_completion_request, body); }

TEST(OpenAiRequest, ChatWithEveryParameter) {
  const auto r = parse_chat_request(R"({"model": "m", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}],
    "max_tokens": 5, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0, "top_k": -1, "min_p": 0.1,
    "seed": -3, "stop": "END", "n": 2, "presence_penalty": -2, "frequency_penalty": 2, "repetition_penalty": 1.2,
    "logprobs": true, "top_logprobs": 20, "stream": true, "stream_options": {"include_usage": true},
    "user": "u", "ignore_eos": true, "some_vendor_field": {"x": [1, 2]}})",
                                    limits());
  EXPECT_EQ(*r.model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].content, "hello there");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, "system");
  EXPECT_EQ(*r.params.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(r.params.top_p, 0.0f);
  EXPECT_EQ(r.params.top_k, 0);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.params.n, 2);
  EXPECT_EQ(*r.params.logprobs, 20);
  EXPECT_TRUE(r.params.stream && r.params.include_usage && r.params.ignore_eos);
  EXPECT_EQ(r.params.user, "u");
}

TEST(OpenAiRequest, ChatErrorsNameTheField) {
  const std::string ok = R"("messages": [{"role": "user", "content": "hi"}])";
  EXPECT_EQ(chat_error("{" + ok + "}"), "");
  EXPECT_EQ(chat_error("{" + ok + R"(, "temperature": "hot"})"), "temperature");
  EXPECT_EQ(chat_error("{" + ok + R"(, "temperature": 2.5})"), "temperature");
  EXPECT_EQ(chat_error("{" + ok + R"(, "top_p": 1.01})"), "top_p");
  EXPECT_EQ(chat_error("{" + ok + R"(, "n": 0})"), "n");
  EXPECT_EQ(chat_error("{" + ok + R"(, "n": 1.5})"), "n");
  EXPECT_EQ(chat_error("{" + ok + R"(, "max_tokens": 0})"), "max_tokens");
  EXPECT_EQ(chat_error("{" + ok + R"(, "stop": [1]})"), "stop");
  EXPECT_EQ(chat_error("{" + ok + R"(, "stop": ""})"), "stop");
  EXPECT_EQ(chat_error("{" + ok + R"(, "top_logprobs": 2})"), "top_logprobs");
  EXPECT_EQ(chat_error("{" + ok + R"(, "logprobs": true, "top_logprobs": 21})"), "top_logprobs");
  EXPECT_EQ(chat_error("{" + ok + R"(, "stream": "yes"})"), "stream");
  EXPECT_EQ(chat_error("{" + ok + R"(, "presence_penalty": 3})"), "presence_penalty");
  EXPECT_EQ(chat_error("{" + ok + R"(, "seed": 1e30})"), "seed");
  EXPECT_EQ(chat_error(R"({"messages": []})"), "messages");
  EXPECT_EQ(chat_error(R"({"messages": "hi"})"), "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user"}]})"), "messages[0].content");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "tool", "content": "x"}]})"), "messages[0].role");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(chat_error("[1, 2]"), "(none)");
  EXPECT_EQ(chat_error("{\"messages\": "), "(none)");
}

// Found by fuzz_openai_request: a number beyond double's range made nlohmann::json throw out_of_range (406), not
// parse_error, which escaped as a 500. It is a malformed body: a 400.
TEST(OpenAiRequest, NumberOutOfRangeIsAMalformedBody) {
  for (const std::string body : {"22E444382760", R"({"messages": [], "temperature": 1e400})", "[-1e999]"}) {
    try {
      parse_chat_request(body, limits());
      ADD_FAILURE() << "accepted " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body;
      EXPECT_NE(std::string(e.what()).find("malformed JSON body"), std::string::npos) << e.what();
    }
  }
}

TEST(OpenAiRequest, CompletionPromptForms) {
  EXPECT_EQ(parse_completion_request(R"({"prompt": "a"})", limits()).prompts.size(), 1u);
  const auto strings = parse_completion_request(R"({"prompt": ["a", "b", "c"]})", limits());
  ASSERT_EQ(strings.prompts.size(), 3u);
  EXPECT_EQ(strings.prompts[2].text, "c");
  const auto ids = parse_completion_request(R"({"prompt": [1, 2, 3]})", limits());
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_TRUE(ids.prompts[0].is_ids);
  EXPECT_EQ(ids.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));
  const auto lists = parse_completion_request(R"({"prompt": [[1, 2], [3]]})", limits());
  ASSERT_EQ(lists.prompts.size(), 2u);
  EXPECT_EQ(lists.prompts[1].ids, std::vector<int32_t>{3});
  EXPECT_EQ(*parse_completion_request(R"({"prompt": "a"})", limits()).params.max_tokens, 16);  // OpenAI's default
}

TEST(OpenAiRequest, CompletionErrorsNameTheField) {
  EXPECT_EQ(completion_error(R"({})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": []})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, "a"]})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [1, 1000]})"), "prompt");  // outside the vocabulary
  EXPECT_EQ(completion_error(R"({"prompt": [-1]})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": [[1], []]})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": {"a": 1}})"), "prompt");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "logprobs": true})"), "logprobs");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "logprobs": 21})"), "logprobs");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "max_tokens": 0})"), "max_tokens");
  EXPECT_EQ(completion_error(R"({"prompt": "a", "max_tokens": 0, "echo": true})"), "");  // scoring the prompt
  EXPECT_EQ(completion_error(R"({"prompt": "a", "echo": 1})"), "echo");
}

TEST(OpenAiRequest, TokenizeAndDetokenize) {
  EXPECT_EQ(*parse_tokenize_request(R"({"prompt": "x"})", limits()).prompt, "x");
  EXPECT_EQ(parse_tokenize_request(R"({"messages": [{"role": "user", "content": "x"}]})", limits()).messages.size(), 1u);
  EXPECT_EQ(rejected_field(parse_tokenize_request, R"({})"), "prompt");
  EXPECT_EQ(parse_detokenize_request(R"({"tokens": [5, 6]})", limits()).tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(rejected_field(parse_detokenize_request, R"({"tokens": [5000]})"), "tokens");
}

}  // namespace
}  // namespace tessera::frontend
