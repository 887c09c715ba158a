#include <gtest/gtest.h>

#include "server/openai_response.h"

namespace nanovllm::server {
namespace {

ChoiceState choice(const std::string& text, bool finished, int32_t prompt = 3, int32_t completion = 2) {
  ChoiceState c;
  c.text = text;
  c.finished = finished;
  c.finish_reason = finished ? "stop" : "";
  c.prompt_tokens = prompt;
  c.completion_tokens = completion;
  return c;
}

TEST(OpenAiResponse, WholeResponsesOfBothApis) {
  const ResponseHeader completion{"cmpl-1", 100, "m", false};
  const std::vector<ChoiceState> choices{choice(" once", true, 3, 2), choice(" twice", true, 4, 5)};
  const auto j = response_json(completion, choices);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][1]["text"], " twice");
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 7);
  EXPECT_EQ(j["usage"]["total_tokens"], 14);
  const ResponseHeader chat{"chatcmpl-1", 100, "m", true};
  const auto c = response_json(chat, {choice("Paris.", true)});
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "Paris.");
}

TEST(OpenAiResponse, ChatChunksCarryTheRoleFirstAndTheFinishReasonLast) {
  const ResponseHeader chat{"chatcmpl-2", 5, "m", true};
  const auto first = chunk_json(chat, 0, "", true, "");
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const auto middle = chunk_json(chat, 0, "Par", false, "");
  EXPECT_FALSE(middle["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(middle["choices"][0]["delta"]["content"], "Par");
  const auto last = chunk_json(chat, 0, "", false, "length");
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(sse_event({{"a", 1}}), "data: {\"a\":1}\n\n");
  const auto usage = usage_chunk_json(chat, {choice("x", true, 2, 1)});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 3);
}

TEST(OpenAiResponse, ErrorsNameTheirParameter) {
  const auto e = error_json(400, "'top_p' must be in (0, 1]", "top_p");
  EXPECT_EQ(e["error"]["param"], "top_p");
  EXPECT_EQ(e["error"]["code"], 400);
  EXPECT_EQ(e["error"]["type"], "BadRequestError");
  EXPECT_TRUE(error_json(500, "boom")["error"]["param"].is_null());
  EXPECT_EQ(error_json(404, "no")["error"]["type"], "NotFoundError");
}

}  // namespace
}  // namespace nanovllm::server
