// The server end to end over real HTTP on a free port: stories260K on the CPU, checked against
// llama2.c's greedy outputs (reference.json), alone, streamed and from many clients at once.
#include <gtest/gtest.h>

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "e2e/e2e_util.h"
#include "server/engine_worker.h"
#include "server/http_server.h"

namespace nanovllm::server {
namespace {

using nlohmann::json;
using e2e::stories_references;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    llm_ = std::make_unique<LLM>(e2e::stories_dir().string(), e2e::cpu_config());
    ServerOptions options;
    options.port = 0;
    options.served_model_name = "stories";
    options.log_requests = false;
    server_ = std::make_unique<HttpServer>(*llm_, options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    wait_for([&] { return server_->running(); }, "the server to listen");
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  template <class Pred>
  static void wait_for(Pred pred, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pred()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting for " << what;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    return c;
  }
  // POST a JSON body; the status and the parsed body (or the raw text for streams).
  std::pair<int, std::string> post(const std::string& path, const json& body) const {
    auto res = client().Post(path, body.dump(), "application/json");
    if (!res) return {-1, "no response: " + httplib::to_string(res.error())};
    return {res->status, res->body};
  }

  std::unique_ptr<LLM> llm_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// The "data:" payloads of a server-sent-event stream, [DONE] included.
std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

TEST_F(HttpServerTest, CompletionsReproduceLlama2c) {
  const auto refs = stories_references();
  for (size_t i = 0; i < refs.size(); i += 2) {
    for (const json& prompt : {json(refs[i].prompt), json(refs[i].prompt_ids)}) {
      const auto [status, body] = post("/v1/completions", {{"model", "stories"},
                                                           {"prompt", prompt},
                                                           {"temperature", 0},
                                                           {"max_tokens", refs[i].output_ids.size()}});
      ASSERT_EQ(status, 200) << body;
      const json j = json::parse(body);
      EXPECT_EQ(j["object"], "text_completion");
      EXPECT_EQ(j["model"], "stories");
      EXPECT_EQ(j["choices"][0]["text"], refs[i].completion_text) << refs[i].prompt;
      EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
      EXPECT_EQ(j["usage"]["prompt_tokens"], refs[i].prompt_ids.size());
      EXPECT_EQ(j["usage"]["completion_tokens"], refs[i].output_ids.size());
    }
  }
}

TEST_F(HttpServerTest, ABatchOfPromptsInOneRequestKeepsItsOrder) {
  const auto refs = stories_references();
  const auto [status, body] = post("/v1/completions", {{"prompt", {refs[6].prompt, refs[0].prompt_ids, refs[2].prompt}},
                                                       {"temperature", 0},
                                                       {"max_tokens", 55}});
  ASSERT_EQ(status, 200) << body;
  const json j = json::parse(body);
  ASSERT_EQ(j["choices"].size(), 3u);
  for (const auto& [k, ref] : {std::pair{0, 6}, std::pair{1, 0}, std::pair{2, 2}}) {
    EXPECT_EQ(j["choices"][k]["index"], k);
    EXPECT_EQ(j["choices"][k]["text"].get<std::string>(), refs[ref].completion_text.substr(0, j["choices"][k]["text"].get<std::string>().size()));
    EXPECT_GT(j["choices"][k]["text"].get<std::string>().size(), 100u);
  }
}

// n choices of each prompt: sampled ones differ (seed, seed + 1, ...), greedy ones agree, the
// prompt counts once in the usage.
TEST_F(HttpServerTest, NChoicesOfEachPrompt) {
  const auto refs = stories_references();
  const auto [status, body] = post("/v1/completions", {{"prompt", {refs[0].prompt, refs[2].prompt}}, {"n", 3},
                                                       {"temperature", 1.0}, {"seed", 7}, {"max_tokens", 20}});
  ASSERT_EQ(status, 200) << body;
  const json j = json::parse(body);
  ASSERT_EQ(j["choices"].size(), 6u);
  std::set<std::string> first_prompt;
  for (int k = 0; k < 3; ++k) first_prompt.insert(j["choices"][k]["text"].get<std::string>());
  EXPECT_EQ(first_prompt.size(), 3u);  // three different samples
  EXPECT_EQ(j["usage"]["prompt_tokens"], refs[0].prompt_ids.size() + refs[2].prompt_ids.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 6 * 20);
  // choice k of a seeded request is the single request seeded with seed + k
  const auto [s1, one] = post("/v1/completions", {{"prompt", refs[0].prompt}, {"temperature", 1.0}, {"seed", 8},
                                                  {"max_tokens", 20}});
  EXPECT_EQ(json::parse(one)["choices"][0]["text"], j["choices"][1]["text"]);
  const auto [s2, greedy] = post("/v1/completions", {{"prompt", refs[0].prompt}, {"n", 2}, {"temperature", 0},
                                                     {"max_tokens", 10}, {"stream", true}});
  std::map<int, std::string> streamed;
  for (const std::string& payload : sse_payloads(greedy))
    if (payload != "[DONE]") {
      const json chunk = json::parse(payload);
      streamed[chunk["choices"][0]["index"].get<int>()] += chunk["choices"][0]["text"].get<std::string>();
    }
  ASSERT_EQ(streamed.size(), 2u);
  EXPECT_EQ(streamed[0], streamed[1]);
  EXPECT_EQ(streamed[0], refs[0].completion_text.substr(0, streamed[0].size()));
}

TEST_F(HttpServerTest, ClientsAtOnceEachGetTheirOwnReference) {
  const auto refs = stories_references();  // 8 entries, up to 197 tokens: one batch of 8
  std::vector<std::string> texts(refs.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < refs.size(); ++i) {
    clients.emplace_back([&, i] {
      const auto [status, body] = post("/v1/completions", {{"prompt", refs[i].prompt_ids},
                                                           {"temperature", 0},
                                                           {"max_tokens", refs[i].output_ids.size()}});
      texts[i] = status == 200 ? json::parse(body)["choices"][0]["text"].get<std::string>() : body;
    });
  }
  for (auto& c : clients) c.join();
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(texts[i], refs[i].completion_text) << i;
}

TEST_F(HttpServerTest, AStreamAddsUpToTheTextAndStopsAtTheStopString) {
  const auto ref = stories_references()[2];  // "Once upon a time", 56 tokens
  const std::string stop = "She loved";
  const size_t cut = ref.completion_text.find(stop);
  ASSERT_NE(cut, std::string::npos);
  const auto [status, body] = post("/v1/completions", {{"prompt", ref.prompt},
                                                       {"temperature", 0},
                                                       {"max_tokens", ref.output_ids.size()},
                                                       {"stop", stop},
                                                       {"stream", true}});
  ASSERT_EQ(status, 200) << body;
  const auto payloads = sse_payloads(body);
  ASSERT_GE(payloads.size(), 2u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string text, finish;
  for (size_t i = 0; i + 1 < payloads.size(); ++i) {
    const json chunk = json::parse(payloads[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    text += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, ref.completion_text.substr(0, cut));
  EXPECT_EQ(finish, "stop");
}

TEST_F(HttpServerTest, AChatStreamStartsWithTheRoleAndEndsWithUsage) {
  const auto [status, body] = post("/v1/chat/completions",
                                   {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                    {"temperature", 0},
                                    {"max_tokens", 12},
                                    {"stream", true},
                                    {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(status, 200) << body;
  const auto payloads = sse_payloads(body);
  ASSERT_GE(payloads.size(), 4u);
  const json first = json::parse(payloads.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  const json usage = json::parse(payloads[payloads.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 12);
  std::string streamed;
  for (size_t i = 0; i + 2 < payloads.size(); ++i)
    streamed += json::parse(payloads[i])["choices"][0]["delta"].value("content", "");
  // The same request whole: the same text.
  const auto [s2, whole] = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                                                         {"temperature", 0},
                                                         {"max_tokens", 12}});
  ASSERT_EQ(s2, 200) << whole;
  const json j = json::parse(whole);
  EXPECT_EQ(j["choices"][0]["message"]["content"], streamed);
  EXPECT_FALSE(streamed.empty());
}

TEST_F(HttpServerTest, BadRequestsGetJsonErrorsAndTheServerCarriesOn) {
  auto expect_error = [&](int want, const std::string& path, const std::string& body, const char* param) {
    auto res = client().Post(path, body, "application/json");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, want) << body;
    const json j = json::parse(res->body);
    EXPECT_EQ(j["error"]["code"], want);
    if (param) {
      EXPECT_EQ(j["error"]["param"], param) << res->body;
    }
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  };
  expect_error(400, "/v1/completions", "{\"prompt\": ", nullptr);
  expect_error(400, "/v1/completions", R"({"prompt": "x", "top_p": 2})", "top_p");
  expect_error(404, "/v1/completions", R"({"prompt": "x", "model": "gpt-4"})", "model");
  expect_error(400, "/v1/completions", R"({"prompt": [100000]})", nullptr);  // outside the vocabulary
  expect_error(400, "/v1/completions", json{{"prompt", std::vector<int32_t>(600, 5)}}.dump(), nullptr);  // > max_model_len
  expect_error(400, "/v1/completions", json{{"prompt", std::vector<int32_t>(600, 5)}, {"stream", true}}.dump(), nullptr);
  expect_error(400, "/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", "messages[0].role");
  expect_error(404, "/v1/embeddings", "{}", nullptr);
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  const json m = json::parse(models->body);
  EXPECT_EQ(m["data"][0]["id"], "stories");
  EXPECT_EQ(m["data"][0]["max_model_len"], 512);
  const auto [status, body] = post("/v1/completions", {{"prompt", "Zoo"}, {"temperature", 0}, {"max_tokens", 5}});
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(server_->running_requests(), 0);
}

// The logprobs a response carries are the engine's own, with each token's text.
TEST_F(HttpServerTest, LogprobsWholeAndStreamedAreTheEnginesOwn) {
  const auto ref = stories_references()[0];
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 12;
  p.logprobs = 2;
  LLM direct(e2e::stories_dir().string(), e2e::cpu_config());
  const RequestOutput expected = direct.generate({Prompt(ref.prompt_ids)}, p)[0];
  const json body{{"prompt", ref.prompt_ids}, {"temperature", 0}, {"max_tokens", 12}, {"logprobs", 2}};
  const auto [status, text] = post("/v1/completions", body);
  ASSERT_EQ(status, 200) << text;
  const json lp = json::parse(text)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), expected.logprobs.size());
  std::string joined;
  for (size_t t = 0; t < expected.logprobs.size(); ++t) {
    EXPECT_FLOAT_EQ(lp["token_logprobs"][t].get<float>(), expected.logprobs[t].logprob) << t;
    EXPECT_EQ(lp["text_offset"][t].get<size_t>(), joined.size());
    joined += lp["tokens"][t].get<std::string>();
    EXPECT_EQ(lp["top_logprobs"][t].size(), 2u);  // greedy: the sampled token is the most likely
  }
  EXPECT_EQ(joined, json::parse(text)["choices"][0]["text"]);
  json streamed_body = body;
  streamed_body["stream"] = true;
  const auto [s2, events] = post("/v1/completions", streamed_body);
  ASSERT_EQ(s2, 200) << events;
  std::vector<float> streamed;
  for (const std::string& payload : sse_payloads(events)) {
    if (payload == "[DONE]") continue;
    const json chunk_lp = json::parse(payload)["choices"][0]["logprobs"];
    if (chunk_lp.is_null()) continue;
    for (const auto& v : chunk_lp["token_logprobs"]) streamed.push_back(v.get<float>());
  }
  ASSERT_EQ(streamed.size(), expected.logprobs.size());
  for (size_t t = 0; t < streamed.size(); ++t) EXPECT_FLOAT_EQ(streamed[t], expected.logprobs[t].logprob);
  const auto [s3, chat] = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Zoo"}}}},
                                                        {"temperature", 0}, {"max_tokens", 4},
                                                        {"logprobs", true}, {"top_logprobs", 3}});
  ASSERT_EQ(s3, 200) << chat;
  const json content = json::parse(chat)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  EXPECT_EQ(content[0]["top_logprobs"].size(), 3u);
  EXPECT_EQ(content[0]["top_logprobs"][0]["logprob"], content[0]["logprob"]);
  EXPECT_LE(content[0]["top_logprobs"][1]["logprob"].get<float>(), content[0]["logprob"].get<float>());
  const auto [s4, plain] = post("/v1/completions", {{"prompt", "Zoo"}, {"max_tokens", 2}});
  EXPECT_TRUE(json::parse(plain)["choices"][0]["logprobs"].is_null());
}

// echo with logprobs, as lm-evaluation-harness scores a continuation: the prompt leads the text
// and the logprobs, the first prompt token has none, the others are the teacher-forced ones.
TEST_F(HttpServerTest, EchoLeadsWithThePromptAndItsLogprobs) {
  const auto ref = stories_references()[2];
  LLM direct(e2e::stories_dir().string(), e2e::cpu_config());
  const std::vector<double> forced = direct.score(ref.prompt_ids);
  for (const bool stream : {false, true}) {
    const auto [status, body] = post("/v1/completions", {{"prompt", ref.prompt}, {"temperature", 0}, {"max_tokens", 3},
                                                         {"echo", true}, {"logprobs", 1}, {"stream", stream}});
    ASSERT_EQ(status, 200) << body;
    std::string text;
    std::map<std::string, json> arrays;  // the logprobs' arrays, chunks joined
    auto take = [&](const json& choice) {
      text += choice["text"].get<std::string>();
      if (choice["logprobs"].is_null()) return;
      for (const auto& [key, values] : choice["logprobs"].items())
        for (const auto& v : values) arrays[key].push_back(v);
    };
    if (stream) {
      for (const std::string& payload : sse_payloads(body))
        if (payload != "[DONE]") take(json::parse(payload)["choices"][0]);
    } else {
      take(json::parse(body)["choices"][0]);
    }
    const json &values = arrays["token_logprobs"], &tops = arrays["top_logprobs"], &offsets = arrays["text_offset"];
    const size_t n = ref.prompt_ids.size();
    EXPECT_EQ(text, ref.prompt + ref.completion_text.substr(0, text.size() - ref.prompt.size())) << stream;
    ASSERT_EQ(values.size(), n + 3) << stream;
    EXPECT_TRUE(values[0].is_null());
    EXPECT_TRUE(tops[0].is_null());
    for (size_t k = 1; k < n; ++k) EXPECT_NEAR(values[k].get<double>(), forced[k], 1e-4) << k;
    for (size_t k = 1; k < values.size(); ++k) {
      EXPECT_FALSE(values[k].is_null()) << k;
      EXPECT_GE(offsets[k].get<size_t>(), offsets[k - 1].get<size_t>());
    }
  }
  const auto [chat_status, chat_body] = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                                                      {"echo", true}});
  EXPECT_EQ(chat_status, 400) << chat_body;
}

TEST_F(HttpServerTest, TokenizeAndDetokenize) {
  const auto ref = stories_references()[0];
  const auto [s1, tok] = post("/tokenize", {{"prompt", ref.prompt}});
  ASSERT_EQ(s1, 200) << tok;
  EXPECT_EQ(json::parse(tok)["tokens"].get<std::vector<int32_t>>(), ref.prompt_ids);  // llama2.c's ids
  EXPECT_EQ(json::parse(tok)["count"], ref.prompt_ids.size());
  EXPECT_EQ(json::parse(tok)["max_model_len"], 512);
  const auto [s2, no_bos] = post("/tokenize", {{"prompt", ref.prompt}, {"add_special_tokens", false}});
  EXPECT_EQ(json::parse(no_bos)["count"], ref.prompt_ids.size() - 1);
  const auto [s3, chat] = post("/tokenize", {{"messages", {{{"role", "user"}, {"content", "Zoo"}}}}});
  ASSERT_EQ(s3, 200) << chat;
  EXPECT_GT(json::parse(chat)["count"].get<int>(), 0);
  std::vector<int32_t> all = ref.prompt_ids;
  all.insert(all.end(), ref.output_ids.begin(), ref.output_ids.end());
  const auto [s4, text] = post("/detokenize", {{"tokens", all}});
  ASSERT_EQ(s4, 200) << text;
  EXPECT_EQ(json::parse(text)["prompt"], ref.prompt + ref.completion_text);
  EXPECT_EQ(post("/detokenize", {{"tokens", "abc"}}).first, 400);
  EXPECT_EQ(post("/tokenize", {{"prompt", 5}}).first, 400);
  EXPECT_EQ(post("/tokenize", json::object()).first, 400);
}

// One sample of GET /metrics' text: the value of the line that starts with `series`.
double metric_value(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_F(HttpServerTest, MetricsCountTokensAndRequests) {
  const auto refs = stories_references();
  int64_t prompt = 0, completion = 0;
  for (int max_tokens : {5, 7}) {
    const auto [status, body] = post("/v1/completions", {{"prompt", refs[0].prompt_ids}, {"temperature", 0},
                                                         {"max_tokens", max_tokens}});
    ASSERT_EQ(status, 200) << body;
    prompt += json::parse(body)["usage"]["prompt_tokens"].get<int64_t>();
    completion += json::parse(body)["usage"]["completion_tokens"].get<int64_t>();
  }
  // " was a little girl ...": ends on the stop string.
  post("/v1/completions", {{"prompt", refs[0].prompt}, {"max_tokens", 20}, {"stop", "little"}, {"temperature", 0}});
  post("/v1/completions", {{"prompt", {100000}}});  // refused
  post("/v1/completions", {{"prompt", {100000}}, {"n", 2}});  // refused: two choices
  auto res = client().Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string& text = res->body;
  const std::string m = "{model_name=\"stories\"}";
  EXPECT_EQ(metric_value(text, "nanovllm:num_requests_running" + m), 0);
  EXPECT_EQ(metric_value(text, "nanovllm:num_requests_waiting" + m), 0);
  EXPECT_EQ(metric_value(text, "nanovllm:kv_cache_usage_perc" + m), 0);
  EXPECT_EQ(metric_value(text, "nanovllm:num_kv_cache_blocks" + m), 512);
  // At least the two measured requests' tokens (the third adds its own).
  EXPECT_GE(metric_value(text, "nanovllm:prompt_tokens_total" + m), double(prompt));
  EXPECT_GE(metric_value(text, "nanovllm:generation_tokens_total" + m), double(completion + 1));
  EXPECT_EQ(metric_value(text, "nanovllm:request_success_total{model_name=\"stories\",finished_reason=\"length\"}"), 2);
  EXPECT_EQ(metric_value(text, "nanovllm:request_success_total{model_name=\"stories\",finished_reason=\"stop\"}"), 1);
  EXPECT_EQ(metric_value(text, "nanovllm:request_success_total{model_name=\"stories\",finished_reason=\"abort\"}"), 0);
  EXPECT_EQ(metric_value(text, "nanovllm:request_failure_total" + m), 3);  // counted per choice
  EXPECT_NE(text.find("# TYPE nanovllm:generation_tokens_total counter"), std::string::npos);
  // One latency sample for each of the three finished requests.
  EXPECT_EQ(metric_value(text, "nanovllm:time_to_first_token_seconds_count" + m), 3);
  EXPECT_EQ(metric_value(text, "nanovllm:e2e_request_latency_seconds_count" + m), 3);
  EXPECT_EQ(metric_value(text, "nanovllm:e2e_request_latency_seconds_bucket{model_name=\"stories\",le=\"+Inf\"}"), 3);
  EXPECT_GT(metric_value(text, "nanovllm:e2e_request_latency_seconds_sum" + m),
            metric_value(text, "nanovllm:time_to_first_token_seconds_sum" + m) - 1e-9);
}

TEST(HttpServerAuth, AnApiKeyGuardsTheV1RoutesButNotHealth) {
  LLM llm(e2e::stories_dir().string(), e2e::cpu_config());
  ServerOptions options;
  options.port = 0;
  options.served_model_name = "stories";
  options.log_requests = false;
  options.api_key = "s3cret";
  HttpServer server(llm, options);
  const int port = server.bind();
  std::thread serving([&] { server.serve(); });
  while (!server.running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  httplib::Client c("127.0.0.1", port);
  const std::string body = R"({"prompt": "Zoo", "max_tokens": 2})";
  auto none = c.Post("/v1/completions", body, "application/json");
  auto wrong = c.Post("/v1/completions", {{"Authorization", "Bearer nope"}}, body, "application/json");
  auto right = c.Post("/v1/completions", {{"Authorization", "Bearer s3cret"}}, body, "application/json");
  auto models = c.Get("/v1/models");
  auto health = c.Get("/health");
  server.stop();
  serving.join();
  ASSERT_TRUE(none && wrong && right && models && health);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["type"], "AuthenticationError");
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(right->status, 200) << right->body;
  EXPECT_EQ(models->status, 401);
  EXPECT_EQ(health->status, 200);
}

// A client that hangs up mid-stream: its request leaves the engine, the server serves on.
TEST_F(HttpServerTest, AClientLeavingMidStreamIsForgotten) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string body = json{{"prompt", "Zoo"}, {"max_tokens", 500}, {"ignore_eos", true}, {"stream", true}}.dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, request.data(), request.size()), ssize_t(request.size()));
  char buf[256];
  ASSERT_GT(read(fd, buf, sizeof(buf)), 0);  // the stream has begun
  close(fd);
  wait_for([&] { return server_->running_requests() == 0; }, "the request to leave the engine");
  const auto [status, text] = post("/v1/completions", {{"prompt", "Zoo"}, {"temperature", 0}, {"max_tokens", 3}});
  EXPECT_EQ(status, 200) << text;
}

// 400 tokens past the end-of-sequence: long enough to still run when the test acts on it.
GenerationRequest long_request() {
  GenerationRequest r;
  r.prompts.emplace_back(std::string("Zoo"));
  r.sampling.max_tokens = 400;
  r.sampling.ignore_eos = true;
  r.max_tokens_given = true;
  return r;
}

// Stopping the server ends a long generation with 503 instead of waiting for it.
TEST_F(HttpServerTest, StoppingEndsRunningRequests) {
  int status = 0;
  std::thread client_thread([&] {
    status = post("/v1/completions", {{"prompt", "Zoo"}, {"max_tokens", 500}, {"ignore_eos", true}}).first;
  });
  wait_for([&] { return server_->running_requests() > 0; }, "the request to run");
  server_->stop();
  client_thread.join();
  EXPECT_EQ(status, 503);  // 500 tokens take far longer than the stop
}

// Cancelling a request's choices (what a hang-up does) aborts it in the engine before its end.
TEST(EngineWorker, CancelledRequestsStopEarly) {
  LLM llm(e2e::stories_dir().string(), e2e::cpu_config());
  EngineWorker worker(llm);
  auto choices = worker.submit(long_request());
  ChoiceSnapshot s;
  while (!s.error && (s.choices.empty() || s.choices[0].completion_tokens == 0))
    s = choices->wait_newer(s.version, std::chrono::milliseconds(100));
  choices->cancel();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (worker.running_requests() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(worker.running_requests(), 0);
  s = choices->wait_newer(0, std::chrono::milliseconds(0));
  EXPECT_FALSE(s.choices[0].finished);
  EXPECT_LT(s.choices[0].completion_tokens, 400);
}

TEST(EngineWorker, TasksRunOnTheEngineThreadUntilShutdown) {
  LLM llm(e2e::stories_dir().string(), e2e::cpu_config());
  EngineWorker worker(llm);
  const std::thread::id caller = std::this_thread::get_id();
  auto ran_elsewhere = worker.run_on_engine<bool>([caller](LLM&) { return std::this_thread::get_id() != caller; });
  EXPECT_TRUE(ran_elsewhere.get());
  auto ids = worker.run_on_engine<std::vector<int32_t>>([](LLM& l) { return l.encode("Zoo"); });
  EXPECT_EQ(ids.get(), stories_references()[0].prompt_ids);
  auto failing = worker.run_on_engine<int>([](LLM&) -> int { throw Error("task failed"); });
  EXPECT_THROW(failing.get(), Error);
  worker.shutdown();
  auto late = worker.run_on_engine<int>([](LLM&) { return 1; });
  EXPECT_THROW(late.get(), std::future_error);
}

TEST(EngineWorker, ShuttingDownFailsWhatIsStillRunning) {
  LLM llm(e2e::stories_dir().string(), e2e::cpu_config());
  std::shared_ptr<ChoiceSet> choices;
  {
    EngineWorker worker(llm);
    choices = worker.submit(long_request());
  }
  const ChoiceSnapshot s = choices->wait_newer(0, std::chrono::milliseconds(0));
  if (!s.all_finished() || !s.admitted) {  // it may have finished before the worker stopped
    ASSERT_TRUE(s.error.has_value());
    EXPECT_EQ(s.error_status, 503);
  }
}

}  // namespace
}  // namespace nanovllm::server
