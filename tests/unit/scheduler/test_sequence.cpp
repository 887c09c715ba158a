#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "scheduler/sequence.h"

namespace nanovllm {
namespace {

TEST(Sequence, TracksPromptCompletionAndBlocks) {
  Sequence seq(7, {11, 12, 13, 14, 15});
  EXPECT_EQ(seq.num_prompt_tokens, 5);
  EXPECT_EQ(seq.num_completion_tokens(), 0);
  EXPECT_EQ(seq.status, SequenceStatus::WAITING);
  EXPECT_EQ(seq.num_blocks(4), 2);
  EXPECT_EQ(std::vector<int32_t>(seq.block(1, 4).begin(), seq.block(1, 4).end()), std::vector<int32_t>{15});
  seq.append_token(16);
  seq.append_token(17);
  seq.append_token(18);
  EXPECT_EQ(seq.num_tokens(), 8);
  EXPECT_EQ(seq.num_completion_tokens(), 3);
  EXPECT_EQ(seq.last_token(), 18);
  EXPECT_EQ(seq.num_blocks(4), 2);
  EXPECT_EQ(std::vector<int32_t>(seq.block(1, 4).begin(), seq.block(1, 4).end()),
            (std::vector<int32_t>{15, 16, 17, 18}));
  EXPECT_EQ(std::vector<int32_t>(seq.completion_token_ids().begin(), seq.completion_token_ids().end()),
            (std::vector<int32_t>{16, 17, 18}));
  EXPECT_EQ(seq.prompt_token_ids().size(), 5u);
  EXPECT_EQ(seq.num_blocks(3), 3);
  EXPECT_THROW(seq.block(2, 4), Error);
  EXPECT_THROW(seq.block(-1, 4), Error);
}

TEST(Sequence, RejectsEmptyPromptAndNamesReasons) {
  EXPECT_THROW(Sequence(1, {}), Error);
  EXPECT_STREQ(finish_reason_name(FinishReason::STOP), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::STOP_STRING), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::LENGTH), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::NONE), "");
}

}  // namespace
}  // namespace nanovllm
