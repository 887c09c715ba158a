#include "engine/llm_engine.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cache/kv_sizing.h"
#include "core/error.h"
#include "engine/gguf_tokenizer.h"
#include "engine/stream_holdback.h"
#include "engine/token_logprobs.h"
#include "model/model_source.h"

namespace nanovllm {
namespace {

// Decode rows in descending context length: the attention grid dispatches a sequence's CTAs in
// row order, so the longest contexts start first and the short ones fill the end of the step
// (longest-processing-time-first; ~5% less attention time on W1's spread contexts, simulated).
// Row order is otherwise free: sampling draws from each request's (seed, step).
void order_longest_first(ScheduledBatch& batch) {
  std::stable_sort(batch.seqs.begin(), batch.seqs.end(),
                   [](const ScheduledSeq& a, const ScheduledSeq& b) {
                     return a.seq->num_tokens() > b.seq->num_tokens();
                   });
}

using Clock = std::chrono::steady_clock;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Kept free beside the KV cache on a GPU: CUDA graphs, library workspaces, fragmentation.
constexpr int64_t kGpuHeadroomBytes = int64_t(512) << 20;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

struct LLMEngine::Request {
  std::shared_ptr<Sequence> seq;
  std::optional<IncrementalDecoder> decoder;
  std::string text;
  int32_t detokenized = 0;  // completion tokens already pushed through the decoder
  bool stopped_by_string = false;
  // What kDelta outputs have reported so far.
  size_t reported_text = 0;
  int32_t reported_tokens = 0;
  std::vector<TokenLogprob> logprobs;  // one per completion token, when the request asked
  bool reported_prompt = false;
  std::vector<std::optional<TokenLogprob>> prompt_logprobs;  // one per prompt token, when asked
  bool prompt_logprobs_done = false;  // every prompt position's logits were seen
};

LLMEngine::LLMEngine(Config config) : config_(std::move(config)) {
  config_.validate();
  LoadedModel loaded = open_model(config_.model, config_.preset, config_.load_format,
                                  config_.dummy_seed);
  ModelConfig& mc = loaded.config;

  const std::filesystem::path tok_dir =
      !config_.tokenizer.empty() ? std::filesystem::path(config_.tokenizer)
                                 : loaded.tokenizer_dir_or_file;
  if (!tok_dir.empty() && std::filesystem::exists(tok_dir / "tokenizer.json")) {
    tokenizer_.emplace(Tokenizer::from_dir(tok_dir));
  } else if (tok_dir.extension() == ".gguf" && std::filesystem::is_regular_file(tok_dir)) {
    tokenizer_.emplace(tokenizer_from_gguf(tok_dir));  // tokenizer.ggml.* metadata
  }
  if (tokenizer_) {
    for (int32_t id : tokenizer_->eos_token_ids())
      if (std::find(mc.eos_token_ids.begin(), mc.eos_token_ids.end(), id) == mc.eos_token_ids.end())
        mc.eos_token_ids.push_back(id);
  }

  backend_ = make_backend(config_.device);
  config_.max_model_len = std::min<int32_t>(config_.max_model_len, mc.max_position_embeddings);
  // A decode step carries one token per running sequence, which may exceed the prefill budget
  // (max_num_batched_tokens < max_num_seqs is valid: chunked prefill with a small budget).
  const int32_t max_step_tokens = std::max(config_.max_num_batched_tokens, config_.max_num_seqs);
  // Validated by Config::validate; the model needs it to fold the KV rotation into its weights.
  kv_dtype_ = *parse_kv_dtype(config_.effective_kv_cache_dtype(), mc.torch_dtype);
  model_ = std::make_unique<DecoderModel>(mc, *backend_, *loaded.weights, max_step_tokens,
                                          config_.max_num_seqs, kv_dtype_);
  loaded.weights.reset();  // unmap the files
  init_kv_cache();

  SchedulerConfig sc;
  sc.max_num_seqs = config_.max_num_seqs;
  sc.max_num_batched_tokens = config_.max_num_batched_tokens;
  sc.max_model_len = config_.max_model_len;
  sc.eos_token_ids = mc.eos_token_ids;
  sc.block_size = config_.kvcache_block_size;
  sc.num_blocks = num_blocks_;
  sc.enable_prefix_caching = config_.enable_prefix_caching;
  scheduler_ = std::make_unique<Scheduler>(sc);

  RunnerConfig rc;
  rc.max_num_batched_tokens = max_step_tokens;
  rc.max_num_seqs = config_.max_num_seqs;
  rc.max_model_len = config_.max_model_len;
  rc.block_size = config_.kvcache_block_size;
  rc.enforce_eager = config_.enforce_eager;
  runner_ = std::make_unique<ModelRunner>(*model_, *backend_, *kv_cache_, rc);
}

LLMEngine::~LLMEngine() = default;

void LLMEngine::init_kv_cache() {
  const ModelConfig& mc = model_->config();
  const KvCacheShape shape{mc.num_hidden_layers, mc.num_key_value_heads, mc.head_dim};
  const int32_t bs = config_.kvcache_block_size;
  const int64_t block_bytes = kv_bytes_per_block(bs, shape, kv_dtype_);
  int64_t blocks = config_.num_kvcache_blocks;
  if (blocks <= 0) {
    int64_t budget = 0;
    if (backend_->device() == Device::CPU) {
      // Enough for every sequence at full length, capped by the CPU KV budget.
      const int64_t wanted = int64_t(config_.max_num_seqs) *
                             blocks_per_sequence(config_.max_model_len, bs) * block_bytes;
      budget = std::min<int64_t>(wanted, int64_t(config_.cpu_kvcache_space_gib * kGiB));
    } else {
      // nano-vllm's rule: what gpu_memory_utilization leaves once weights and workspaces sit.
      const MemoryInfo mem = backend_->memory_info();
      const int64_t used = int64_t(mem.total_bytes) - int64_t(mem.free_bytes);
      budget = int64_t(double(mem.total_bytes) * config_.gpu_memory_utilization) - used -
               kGpuHeadroomBytes;
    }
    blocks = budget / block_bytes;
  }
  NANOVLLM_CHECK(blocks > 0, "KV cache: no memory left for one block of ", bs, " tokens (",
                 block_bytes, " bytes); lower max_num_batched_tokens/max_num_seqs or raise the "
                 "memory budget");
  num_blocks_ = int32_t(std::min<int64_t>(blocks, INT32_MAX));
  kv_cache_ = std::make_unique<KvCache>(*backend_, shape, bs, kv_dtype_, num_blocks_);
  std::fprintf(stderr,
               "[nanovllm] KV cache: %d blocks x %d tokens, %s, %lld bytes/token, %.2f GiB on %s\n",
               num_blocks_, bs, std::string(kv_dtype_name(kv_dtype_)).c_str(),
               (long long)kv_bytes_per_token(shape, kv_dtype_), kv_cache_->total_bytes() / kGiB,
               backend_->name().c_str());
  stats_.num_kv_blocks = num_blocks_;
  stats_.kv_block_size = bs;
  stats_.kv_bytes_per_token = kv_bytes_per_token(shape, kv_dtype_);
  stats_.device = backend_->device() == Device::CPU ? "cpu" : "cuda";
  stats_.device_name = backend_->device_name();
  stats_.kv_cache_dtype = std::string(kv_dtype_name(kv_dtype_));
}

int64_t LLMEngine::add_request(const Prompt& prompt, const SamplingParams& params) {
  params.validate();
  std::vector<int32_t> ids;
  if (const auto* text = std::get_if<std::string>(&prompt)) {
    NANOVLLM_CHECK(tokenizer_.has_value(),
                   "request: a text prompt needs a tokenizer, and this model has none "
                   "(give token ids, or a tokenizer folder)");
    ids = tokenizer_->encode(*text, true);
  } else {
    ids = std::get<std::vector<int32_t>>(prompt);
  }
  NANOVLLM_CHECK(!ids.empty(), "request: the prompt is empty");
  const int32_t vocab = model_->config().vocab_size;
  for (int32_t id : ids)
    NANOVLLM_CHECK(id >= 0 && id < vocab, "request: prompt token id ", id,
                   " is outside the vocabulary [0, ", vocab, ")");
  auto request = std::make_unique<Request>();
  const int64_t id = next_request_id_++;
  request->seq = std::make_shared<Sequence>(id, std::move(ids), params);
  if (params.prompt_logprobs >= 0) {
    request->seq->skip_prefix_cache = true;  // every prompt position's logits must be computed
    request->prompt_logprobs.resize(request->seq->prompt_token_ids().size());
    request->prompt_logprobs_done = request->prompt_logprobs.size() <= 1;  // nothing to predict
  }
  // Decoding continues from the prompt, so a completion starts with the space it really has.
  if (tokenizer_) request->decoder.emplace(*tokenizer_, request->seq->prompt_token_ids(), true);
  scheduler_->add(request->seq);
  requests_.emplace(id, std::move(request));
  return id;
}

void LLMEngine::detokenize(Request& r) {
  const Sequence& seq = *r.seq;
  if (!r.decoder) {
    r.detokenized = seq.num_completion_tokens();
    return;
  }
  const auto completion = seq.completion_token_ids();
  while (r.detokenized < int32_t(completion.size()) && !r.stopped_by_string) {
    const size_t before = r.text.size();
    r.text += r.decoder->push(completion[r.detokenized++]);
    if (seq.is_finished() && r.detokenized == int32_t(completion.size())) r.text += r.decoder->finish();
    for (const std::string& stop : seq.params.stop) {
      const size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
      const size_t at = r.text.find(stop, from);
      if (at != std::string::npos) {
        r.text.resize(at);
        r.stopped_by_string = true;
        break;
      }
    }
  }
}

std::vector<RequestOutput> LLMEngine::step(OutputKind kind) {
  std::vector<RequestOutput> outputs;
  for (int64_t id : run_step()) {
    Request& r = *requests_.at(id);
    outputs.push_back(kind == OutputKind::kDelta ? delta_of(r) : output_of(r));
    // Reported finished once, then forgotten: a server's engine would otherwise keep every
    // request it ever served.
    if (outputs.back().finished) requests_.erase(id);
  }
  return outputs;
}

int32_t LLMEngine::advance() {
  int32_t finished = 0;
  for (int64_t id : run_step()) finished += is_done(*requests_.at(id)) ? 1 : 0;
  return finished;
}

bool LLMEngine::is_done(const Request& r) const {
  return r.seq->is_finished() || r.stopped_by_string;
}

std::vector<int64_t> LLMEngine::run_step() {
  ScheduledBatch batch = scheduler_->schedule();
  if (batch.empty()) return {};
  if (!batch.is_prefill) order_longest_first(batch);
  const auto t0 = Clock::now();
  std::vector<int64_t> prompt_logprob_ids;
  if (batch.is_prefill)
    for (const ScheduledSeq& s : batch.seqs)
      if (s.seq->params.prompt_logprobs >= 0 && !requests_.at(s.seq->id)->prompt_logprobs_done)
        prompt_logprob_ids.push_back(s.seq->id);
  // Position p's logits give token p + 1 of the prompt its log-probability.
  auto prompt_sink = [&](int64_t seq_id, int32_t first, std::span<const float> logits, int32_t n) {
    Request& r = *requests_.at(seq_id);
    const auto prompt = r.seq->prompt_token_ids();
    const size_t vocab = logits.size() / size_t(std::max(n, 1));
    for (int32_t j = 0; j < n; ++j) {
      const size_t next = size_t(first + j) + 1;
      if (next >= prompt.size()) break;
      r.prompt_logprobs[next] = token_logprob(logits.subspan(size_t(j) * vocab, vocab), prompt[next],
                                              r.seq->params.prompt_logprobs);
      r.prompt_logprobs_done = next + 1 == prompt.size();
    }
  };
  std::vector<int32_t> sampled = runner_->run(batch, prompt_logprob_ids, prompt_sink);
  const double dt = seconds_since(t0);
  if (batch.is_prefill) {
    stats_.prefill_seconds += dt;
    stats_.prompt_tokens += batch.num_tokens();
  } else {
    stats_.decode_seconds += dt;
  }
  stats_.generated_tokens += int64_t(sampled.size());
  std::vector<int64_t> touched;
  bool wants_logprobs = false;
  for (const ScheduledSeq& s : batch.seqs) {
    if (s.samples) touched.push_back(s.seq->id);
    wants_logprobs |= s.samples && s.seq->params.logprobs >= 0;
  }
  if (wants_logprobs) {
    auto logprobs = runner_->sampled_logprobs(batch, sampled);
    for (size_t i = 0; i < touched.size(); ++i)
      if (logprobs[i]) requests_.at(touched[i])->logprobs.push_back(std::move(*logprobs[i]));
  }
  scheduler_->postprocess(batch, sampled);
  for (int64_t id : touched) {
    Request& r = *requests_.at(id);
    detokenize(r);
    if (r.stopped_by_string && !r.seq->is_finished())
      scheduler_->finish(id, FinishReason::STOP_STRING);
  }
  return touched;
}

RequestOutput LLMEngine::output_of(const Request& r) const {
  RequestOutput out;
  const Sequence& seq = *r.seq;
  out.request_id = seq.id;
  const auto prompt = seq.prompt_token_ids();
  out.prompt_token_ids.assign(prompt.begin(), prompt.end());
  const auto completion = seq.completion_token_ids();
  out.token_ids.assign(completion.begin(), completion.end());
  out.logprobs = r.logprobs;
  out.prompt_logprobs = r.prompt_logprobs;
  out.text = r.text;
  out.finished = is_done(r);
  out.finish_reason = finish_reason_of(r);
  return out;
}

std::string LLMEngine::finish_reason_of(const Request& r) const {
  if (r.stopped_by_string) return "stop";
  return is_done(r) ? finish_reason_name(r.seq->finish_reason) : "";
}

RequestOutput LLMEngine::delta_of(Request& r) const {
  RequestOutput out;
  const Sequence& seq = *r.seq;
  out.request_id = seq.id;
  if (!r.reported_prompt) {
    const auto prompt = seq.prompt_token_ids();
    out.prompt_token_ids.assign(prompt.begin(), prompt.end());
    out.prompt_logprobs = r.prompt_logprobs;
    r.reported_prompt = true;
  }
  const auto completion = seq.completion_token_ids();
  out.token_ids.assign(completion.begin() + r.reported_tokens, completion.end());
  if (size_t(r.reported_tokens) < r.logprobs.size())
    out.logprobs.assign(r.logprobs.begin() + r.reported_tokens, r.logprobs.end());
  r.reported_tokens = int32_t(completion.size());
  out.finished = is_done(r);
  const size_t upto = reportable_text_length(r.text, out.finished, longest_stop_length(seq.params.stop));
  if (upto > r.reported_text) {
    out.text = r.text.substr(r.reported_text, upto - r.reported_text);
    r.reported_text = upto;
  }
  out.finish_reason = finish_reason_of(r);
  return out;
}

RequestOutput LLMEngine::take_output(int64_t request_id) {
  auto it = requests_.find(request_id);
  NANOVLLM_CHECK(it != requests_.end(), "engine: no request ", request_id);
  RequestOutput out = output_of(*it->second);
  if (out.finished) requests_.erase(it);
  return out;
}

void LLMEngine::abort_request(int64_t request_id) {
  scheduler_->finish(request_id, FinishReason::ABORT);
  requests_.erase(request_id);
}

void LLMEngine::run_teacher_forced(
    const std::vector<int32_t>& token_ids,
    const std::function<void(int32_t, std::span<const float>, int32_t)>& on_logits) {
  NANOVLLM_CHECK(scheduler_->is_finished(), "engine: teacher-forced passes need an idle engine");
  NANOVLLM_CHECK(!token_ids.empty(), "score: no tokens");
  SamplingParams params;
  params.temperature = 0;
  params.max_tokens = 1;
  params.ignore_eos = true;
  auto seq = std::make_shared<Sequence>(next_request_id_++, token_ids, params);
  seq->skip_prefix_cache = true;  // every position's logits must be computed
  scheduler_->add(seq);
  const std::vector<int64_t> ids{seq->id};
  int32_t expected = 0;
  auto sink = [&](int64_t, int32_t first, std::span<const float> logits, int32_t n) {
    NANOVLLM_CHECK(first == expected, "score: logits of position ", first, " arrived before ",
                   expected);
    on_logits(first, logits, n);
    expected += n;
  };
  while (!scheduler_->is_finished()) {
    ScheduledBatch batch = scheduler_->schedule();
    if (batch.empty()) break;
    std::vector<int32_t> sampled = runner_->run(batch, ids, sink);
    scheduler_->postprocess(batch, sampled);
  }
  NANOVLLM_CHECK(expected == int32_t(token_ids.size()), "score: computed ", expected, " of ",
                 token_ids.size(), " positions");
}

EngineStats LLMEngine::stats() const {
  EngineStats s = stats_;
  s.preemptions = scheduler_->num_preemptions() - preemptions_at_reset_;
  s.cached_prompt_tokens = scheduler_->block_manager().hit_tokens();
  s.peak_device_bytes = int64_t(backend_->peak_allocated_bytes());
  s.num_running_seqs = scheduler_->num_running();
  s.num_waiting_seqs = scheduler_->num_waiting();
  s.num_free_kv_blocks = scheduler_->block_manager().num_free_blocks();
  return s;
}

void LLMEngine::reset_stats() {
  const EngineStats keep = stats_;
  stats_ = EngineStats{};
  stats_.num_kv_blocks = keep.num_kv_blocks;
  stats_.kv_block_size = keep.kv_block_size;
  stats_.kv_bytes_per_token = keep.kv_bytes_per_token;
  stats_.device = keep.device;
  stats_.device_name = keep.device_name;
  stats_.kv_cache_dtype = keep.kv_cache_dtype;
  preemptions_at_reset_ = scheduler_->num_preemptions();
  scheduler_->reset_prefix_cache_counters();
}

}  // namespace nanovllm
