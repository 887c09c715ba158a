#include <gtest/gtest.h>

#include "server/stream_writer.h"

namespace nanovllm::server {
namespace {

using nlohmann::json;

std::vector<json> payloads(const std::string& events) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = events.find("data: ", at)) != std::string::npos) {
    const size_t end = events.find("\n\n", at);
    const std::string p = events.substr(at + 6, end - at - 6);
    out.push_back(p == "[DONE]" ? json("[DONE]") : json::parse(p));
    at = end;
  }
  return out;
}

ChoiceSnapshot snapshot(uint64_t version, std::string text_not_sent, size_t offset, int32_t tokens, bool finished) {
  ChoiceSnapshot s;
  s.version = version;
  s.admitted = true;
  ChoiceState c;
  c.text = std::move(text_not_sent);
  c.text_offset = offset;
  c.completion_tokens = tokens;
  c.prompt_tokens = 4;
  c.finished = finished;
  c.finish_reason = finished ? "length" : "";
  s.choices.push_back(c);
  return s;
}

TEST(StreamWriter, ChunksCarryWhatIsNewThenTheFinishTheUsageAndDone) {
  StreamWriter w({"cmpl-1", 0, "m", false}, 1, {true, false, false});
  auto first = payloads(w.events(snapshot(1, "", 0, 0, false)));
  ASSERT_EQ(first.size(), 1u);  // the opening chunk, empty
  EXPECT_EQ(first[0]["choices"][0]["text"], "");
  EXPECT_EQ(w.version(), 1u);
  EXPECT_TRUE(payloads(w.events(snapshot(2, "", 0, 1, false))).empty());  // a token without text: nothing
  auto text = payloads(w.events(snapshot(3, " was", 0, 2, false)));
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0]["choices"][0]["text"], " was");
  EXPECT_EQ((*w.sent_text())[0], 4u);
  auto last = payloads(w.events(snapshot(4, " a", 4, 3, true)));
  ASSERT_EQ(last.size(), 4u);  // text, finish, usage, [DONE]
  EXPECT_EQ(last[0]["choices"][0]["text"], " a");
  EXPECT_EQ(last[1]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last[2]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(last[3], "[DONE]");
  EXPECT_TRUE(w.done());
  EXPECT_EQ(w.events(snapshot(5, "x", 6, 4, true)), "");
}

TEST(StreamWriter, ContinuousUsageReportsTokensEvenWhileTextLags) {
  StreamWriter w({"cmpl-2", 0, "m", false}, 1, {false, true, false});
  w.events(snapshot(1, "", 0, 0, false));
  auto held = payloads(w.events(snapshot(2, "", 0, 2, false)));  // two tokens, text held back
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0]["usage"]["completion_tokens"], 2);
  EXPECT_EQ(held[0]["usage"]["prompt_tokens"], 4);
  EXPECT_TRUE(payloads(w.events(snapshot(3, "", 0, 2, false))).empty());  // nothing new
}

TEST(StreamWriter, AnErrorEndsTheStream) {
  StreamWriter w({"cmpl-3", 0, "m", true}, 1, {});
  ChoiceSnapshot s = snapshot(1, "", 0, 0, false);
  s.error = "engine error: boom";
  s.error_status = 500;
  auto events = payloads(w.events(s));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["error"]["code"], 500);
  EXPECT_EQ(events[1], "[DONE]");
  EXPECT_TRUE(w.done());
}

}  // namespace
}  // namespace nanovllm::server
