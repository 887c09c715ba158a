#include <gtest/gtest.h>

#include <thread>

#include "server/choice_set.h"

namespace nanovllm::server {
namespace {

using std::chrono::milliseconds;

RequestOutput delta(const std::string& text, std::vector<int32_t> ids, bool finished = false) {
  RequestOutput o;
  o.text = text;
  o.token_ids = std::move(ids);
  o.finished = finished;
  o.finish_reason = finished ? "length" : "";
  return o;
}

TEST(ChoiceSet, DeltasAppendAndStreamsCopyOnlyWhatTheyHaveNotSent) {
  ChoiceSet set(2);
  set.set_prompt_tokens(0, 4);
  set.mark_admitted();
  set.update(0, delta(" once", {7, 8}));
  set.update(1, delta(" two", {9}));
  set.update(0, delta(" upon", {10}));
  ChoiceSnapshot whole = set.wait_newer(0, milliseconds(0));
  ASSERT_EQ(whole.choices.size(), 2u);
  EXPECT_EQ(whole.choices[0].text, " once upon");
  EXPECT_EQ(whole.choices[0].completion_tokens, 3);
  EXPECT_EQ(whole.choices[0].prompt_tokens, 4);
  EXPECT_EQ(whole.choices[1].text, " two");
  EXPECT_TRUE(whole.admitted);
  EXPECT_FALSE(whole.all_finished());
  const std::vector<size_t> sent{5, 0};
  const ChoiceSnapshot rest = set.wait_newer(0, milliseconds(0), &sent);
  EXPECT_EQ(rest.choices[0].text, " upon");
  EXPECT_EQ(rest.choices[0].text_offset, 5u);
  EXPECT_EQ(rest.choices[1].text, " two");
  const std::vector<size_t> beyond{99, 4};
  EXPECT_EQ(set.wait_newer(0, milliseconds(0), &beyond).choices[0].text, "");
  set.update(0, delta("", {}, true));
  set.update(1, delta(".", {3}, true));
  const ChoiceSnapshot done = set.wait_newer(whole.version, milliseconds(0));
  EXPECT_GT(done.version, whole.version);
  EXPECT_TRUE(done.all_finished());
  EXPECT_EQ(done.choices[1].finish_reason, "length");
}

TEST(ChoiceSet, WaitDoneReturnsOnceEveryChoiceFinished) {
  ChoiceSet set(2);
  set.mark_admitted();
  set.update(0, delta("a", {1}, true));
  EXPECT_FALSE(set.wait_done(milliseconds(10)).all_finished());  // timed out: choice 1 runs
  std::thread engine([&] {
    std::this_thread::sleep_for(milliseconds(20));
    set.update(1, delta("b", {2}));
    set.update(1, delta("c", {3}, true));
  });
  const ChoiceSnapshot done = set.wait_done(milliseconds(60000));
  engine.join();
  EXPECT_TRUE(done.all_finished());
  EXPECT_EQ(done.choices[1].text, "bc");
}

TEST(ChoiceSet, AWaiterWakesOnAnUpdateAndTimesOutWithout) {
  ChoiceSet set(1);
  const ChoiceSnapshot before = set.wait_newer(0, milliseconds(0));
  EXPECT_EQ(set.wait_newer(before.version, milliseconds(20)).version, before.version);  // timed out
  std::thread engine([&] {
    std::this_thread::sleep_for(milliseconds(20));
    set.fail(500, "engine error: boom");
  });
  const ChoiceSnapshot after = set.wait_newer(before.version, milliseconds(60000));
  engine.join();
  ASSERT_TRUE(after.error.has_value());
  EXPECT_EQ(*after.error, "engine error: boom");
  EXPECT_EQ(after.error_status, 500);
  set.fail(503, "second");  // the first error stays
  EXPECT_EQ(*set.wait_newer(0, milliseconds(0)).error, "engine error: boom");
  EXPECT_FALSE(set.cancelled());
  set.cancel();
  EXPECT_TRUE(set.cancelled());
}

}  // namespace
}  // namespace nanovllm::server
