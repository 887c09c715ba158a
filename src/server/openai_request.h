#pragma once
// OpenAI-style request bodies (POST /v1/completions, /v1/chat/completions) parsed into what the
// engine needs. Every malformed field is a RequestError naming the field, as the OpenAI API and
// vLLM report it (HTTP 400, "param": the field).
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "nanovllm/sampling_params.h"

namespace nanovllm::server {

// A request the server refuses: the HTTP status, the field at fault (empty: the whole body).
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string param, const std::string& message)
      : std::runtime_error(message), status_(status), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string param_;
};

using ChatMessages = std::vector<std::pair<std::string, std::string>>;  // (role, content)
// One prompt: text (tokenized with the model's tokenizer), token ids, or chat messages.
using PromptInput = std::variant<std::string, std::vector<int32_t>, ChatMessages>;

struct GenerationRequest {
  std::string model;                // as the client named it; empty when not given
  std::vector<PromptInput> prompts;  // /v1/completions may batch several; chat has one
  int32_t n = 1;                     // choices per prompt (prompt i's are choices i*n .. i*n+n-1)
  SamplingParams sampling;
  bool max_tokens_given = false;    // else: 16 for completions, the rest of the context for chat
  // Which sampling fields the client set; the others take the model's generation_config.json.
  bool temperature_given = false, top_p_given = false, top_k_given = false;
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage
  bool continuous_usage = false;    // stream_options.continuous_usage_stats (vLLM's): usage in every chunk
  bool enable_thinking = true;      // chat_template_kwargs.enable_thinking (Qwen3)
  bool chat = false;
  // Completions' echo: the prompt leads the text (and with logprobs, its tokens lead the
  // logprobs, the first with none: what lm-evaluation-harness scores loglikelihoods with).
  bool echo = false;
};

// POST /tokenize (vLLM's): a prompt, or chat messages formatted with the model's chat format.
struct TokenizeRequest {
  std::optional<std::string> prompt;
  ChatMessages messages;            // when no prompt
  bool add_special_tokens = true;   // prompt: BOS etc. as a completion request would get them
  bool add_generation_prompt = true;
  bool enable_thinking = true;
};

// Throws RequestError (400) for a body that is not a JSON object or has a malformed field.
GenerationRequest parse_completion_request(const std::string& body);
GenerationRequest parse_chat_request(const std::string& body);
TokenizeRequest parse_tokenize_request(const std::string& body);
std::vector<int32_t> parse_detokenize_request(const std::string& body);  // its "tokens"

}  // namespace nanovllm::server
