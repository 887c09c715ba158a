#include <gtest/gtest.h>

#include "server/openai_request.h"

namespace nanovllm::server {
namespace {

// The RequestError a body raises (fails the test when it parses).
RequestError refusal(const std::string& body, bool chat = false) {
  try {
    chat ? parse_chat_request(body) : parse_completion_request(body);
  } catch (const RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return RequestError(0, "", "");
}

TEST(OpenAiRequest, CompletionFieldsReachTheSamplingParams) {
  const GenerationRequest r = parse_completion_request(
      R"({"model": "m", "prompt": "Hi", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
          "top_k": 20, "seed": 42, "stop": ["\n", "END"], "stop_token_ids": [3, 4],
          "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true},
          "user": "ignored", "n": 1, "logprobs": null})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.prompts[0]), "Hi");
  EXPECT_EQ(r.sampling.max_tokens, 7);
  EXPECT_TRUE(r.max_tokens_given);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(r.sampling.stop_token_ids, (std::vector<int32_t>{3, 4}));
  EXPECT_TRUE(r.sampling.ignore_eos);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.temperature_given && r.top_p_given && r.top_k_given);
  EXPECT_FALSE(r.chat);
}

TEST(OpenAiRequest, UnsetFieldsAreMarkedSoTheModelDefaultsApply) {
  const GenerationRequest r = parse_completion_request(R"({"prompt": "Hi"})");
  EXPECT_FALSE(r.max_tokens_given || r.temperature_given || r.top_p_given || r.top_k_given);
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.model.empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(parse_completion_request(R"({"prompt": "Hi", "n": 3})").n, 3);
}

TEST(OpenAiRequest, PromptFormsOfTheCompletionsApi) {
  EXPECT_EQ(std::get<std::vector<int32_t>>(parse_completion_request(R"({"prompt": [1, 2, 3]})").prompts[0]),
            (std::vector<int32_t>{1, 2, 3}));
  const auto batch = parse_completion_request(R"({"prompt": ["a", [5, 6], "b"]})").prompts;
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(std::get<std::string>(batch[0]), "a");
  EXPECT_EQ(std::get<std::vector<int32_t>>(batch[1]), (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(std::get<std::string>(batch[2]), "b");
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "stop": "END"})").sampling.stop,
            (std::vector<std::string>{"END"}));
}

TEST(OpenAiRequest, ChatMessagesAndItsOwnFieldNames) {
  const GenerationRequest r = parse_chat_request(
      R"({"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}],
          "max_completion_tokens": 9, "max_tokens": 3,
          "chat_template_kwargs": {"enable_thinking": false}})");
  EXPECT_TRUE(r.chat);
  const auto& messages = std::get<ChatMessages>(r.prompts.at(0));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], (std::pair<std::string, std::string>{"system", "Be brief."}));
  EXPECT_EQ(messages[1], (std::pair<std::string, std::string>{"user", "Hello"}));
  EXPECT_EQ(r.sampling.max_tokens, 9);  // max_completion_tokens wins over the older max_tokens
  EXPECT_FALSE(r.enable_thinking);
  EXPECT_EQ(parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4})")
                .sampling.max_tokens,
            4);
}

TEST(OpenAiRequest, MalformedFieldsAreRefusedByName) {
  struct Case {
    const char* body;
    const char* param;
    const char* says;
  };
  const Case cases[] = {
      {R"({"prompt": "x", "temperature": -1})", "temperature", ">= 0, got -1"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature", "must be a number, got string"},
      {R"({"prompt": "x", "temperature": 1e300})", "temperature", "finite"},
      {R"({"prompt": "x", "top_p": 0})", "top_p", "(0, 1]"},
      {R"({"prompt": "x", "top_k": -2})", "top_k", "-1"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens", ">= 1"},
      {R"({"prompt": "x", "max_tokens": 2.5})", "max_tokens", "integer"},
      {R"({"prompt": "x", "seed": -3})", "seed", ">= 0"},
      {R"({"prompt": "x", "stop": [1]})", "stop", "strings"},
      {R"({"prompt": "x", "stop": ""})", "stop", "empty"},
      {R"({"prompt": "x", "stop_token_ids": [-1]})", "stop_token_ids", "token ids"},
      {R"({"prompt": "x", "stream": "yes"})", "stream", "boolean"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options", "stream"},
      {R"({"prompt": "x", "n": 0})", "n", "[1, 128]"},
      {R"({"prompt": "x", "n": 500})", "n", "[1, 128]"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs", "[0, 20]"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs", "integer"},
      {R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty", "not supported"},
      {R"({"prompt": "x", "model": 3})", "model", "string"},
      {R"({})", "prompt", "required"},
      {R"({"prompt": ""})", "prompt", "empty"},
      {R"({"prompt": []})", "prompt", "empty array"},
      {R"({"prompt": [1, "a"]})", "prompt", "token ids"},
      {R"({"prompt": {"text": "x"}})", "prompt", "got object"},
  };
  for (const Case& c : cases) {
    const RequestError e = refusal(c.body);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body << " -> " << e.what();
  }
}

TEST(OpenAiRequest, MalformedChatMessagesAreRefusedByPosition) {
  EXPECT_EQ(refusal(R"({"messages": []})", true).param(), "messages");
  EXPECT_EQ(refusal(R"({"messages": "hi"})", true).param(), "messages");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "a"}, {"content": "b"}]})", true).param(),
            "messages[1].role");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true).param(),
            "messages[0].content");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": 0})", true).param(),
            "max_completion_tokens");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function"}]})", true)
                .param(),
            "tools");
}

TEST(OpenAiRequest, LogprobsOfBothApis) {
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x"})").sampling.logprobs, -1);
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "logprobs": 0})").sampling.logprobs, 0);
  EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "logprobs": 5})").sampling.logprobs, 5);
  const char* chat = R"({"messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(parse_chat_request(std::string(chat) + "}").sampling.logprobs, -1);
  EXPECT_EQ(parse_chat_request(std::string(chat) + R"(, "logprobs": true})").sampling.logprobs, 0);
  EXPECT_EQ(parse_chat_request(std::string(chat) + R"(, "logprobs": true, "top_logprobs": 3})").sampling.logprobs, 3);
  EXPECT_EQ(parse_chat_request(std::string(chat) + R"(, "logprobs": false})").sampling.logprobs, -1);
  EXPECT_EQ(refusal(std::string(chat) + R"(, "top_logprobs": 3})", true).param(), "top_logprobs");
  EXPECT_EQ(refusal(std::string(chat) + R"(, "logprobs": true, "top_logprobs": 30})", true).param(), "top_logprobs");
  EXPECT_EQ(refusal(std::string(chat) + R"(, "logprobs": 2})", true).param(), "logprobs");
}

TEST(OpenAiRequest, BodiesThatAreNotJsonObjects) {
  for (const char* body : {"", "{", "[1, 2]", "\"text\"", "{\"prompt\": \"x\",}"}) {
    const RequestError e = refusal(body);
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_EQ(e.param(), "") << body;
    EXPECT_NE(std::string(e.what()).find("request body"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nanovllm::server
