#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>

#include "core/error.h"
#include "server/engine_worker.h"
#include "server/openai_response.h"
#include "server/server_metrics.h"
#include "server/stream_writer.h"

namespace nanovllm::server {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kPollInterval{100};  // how often a waiting handler rechecks its connection

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message,
                 const std::string& param = "") {
  reply_json(res, status, error_json(status, message, param));
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


}  // namespace

HttpServer::HttpServer(LLM& llm, ServerOptions options)
    : llm_(llm),
      options_(std::move(options)),
      worker_(std::make_unique<EngineWorker>(llm)),
      http_(std::make_unique<httplib::Server>()) {
  NANOVLLM_CHECK(options_.http_threads >= 1, "serve: --http-threads is ", options_.http_threads,
                 ", expected >= 1");
  const size_t threads = size_t(options_.http_threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(size_t(64) << 20);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server binds a
  // port already served and the kernel splits the connections between the two.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  add_routes();
}

HttpServer::~HttpServer() {
  stop();
  worker_.reset();
}

int HttpServer::bind() {
  const int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                                      : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  NANOVLLM_CHECK(port > 0, "serve: cannot listen on ", options_.host, ":", options_.port,
                 " (address in use, or not an address of this machine)");
  return port;
}

void HttpServer::serve() { http_->listen_after_bind(); }

void HttpServer::stop() {
  worker_->shutdown();
  http_->stop();
}

bool HttpServer::running() const { return http_->is_running(); }

int64_t HttpServer::running_requests() const { return worker_->running_requests(); }

void HttpServer::add_routes() {
  http_->Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(worker_->metrics(), options_.served_model_name),
                    "text/plain; version=0.0.4");
  });
  http_->Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) { handle_tokenize(req, res); });
  http_->Post("/detokenize",
              [this](const httplib::Request& req, httplib::Response& res) { handle_detokenize(req, res); });
  http_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { handle_models(res); });
  http_->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, false);
  });
  http_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, true);
  });
  if (!options_.api_key.empty()) {
    // As vllm serve --api-key: /health stays open, every /v1 route needs the key.
    const std::string expected = "Bearer " + options_.api_key;
    http_->set_pre_routing_handler([expected](const httplib::Request& req, httplib::Response& res) {
      if (req.path.rfind("/v1/", 0) != 0 || req.get_header_value("Authorization") == expected)
        return httplib::Server::HandlerResponse::Unhandled;
      reply_error(res, 401, "missing or wrong API key (expected the header 'Authorization: Bearer <key>')");
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  // Every error response is JSON, including httplib's own (404 for an unknown route, 413, ...).
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string message = res.status == 404   ? "no route " + req.method + " " + req.path
                                : res.status == 413 ? std::string("request body too large")
                                                    : "HTTP status " + std::to_string(res.status);
    reply_error(res, res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    reply_error(res, 500, message);
  });
  if (options_.log_requests) {
    http_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
      std::fprintf(stderr, "[nanovllm] %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
  }
}

void HttpServer::handle_models(httplib::Response& res) const {
  const json model{{"id", options_.served_model_name},
                   {"object", "model"},
                   {"created", unix_seconds()},
                   {"owned_by", "nanovllm"},
                   {"max_model_len", llm_.config().max_model_len}};
  reply_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
}

// Runs `parse` (a request parser); a RequestError becomes the 400 naming its field. False then.
template <class Parse>
bool parsed(httplib::Response& res, Parse parse) {
  try {
    parse();
    return true;
  } catch (const RequestError& e) {
    reply_error(res, e.status(), e.what(), e.param());
    return false;
  }
}

// The engine thread's answer, or the HTTP error it stands for.
template <class Result>
bool engine_answer(std::future<Result>& future, httplib::Response& res, Result& out) {
  try {
    out = future.get();
    return true;
  } catch (const Error& e) {  // the request is at fault (e.g. a model without a tokenizer)
    reply_error(res, 400, e.what());
  } catch (const std::future_error&) {
    reply_error(res, 503, "the server is shutting down");
  }
  return false;
}

void HttpServer::handle_tokenize(const httplib::Request& req, httplib::Response& res) {
  TokenizeRequest request;
  if (!parsed(res, [&] { request = parse_tokenize_request(req.body); })) return;
  auto future = worker_->run_on_engine<std::vector<int32_t>>([request](LLM& llm) {
    if (request.prompt) return llm.encode(*request.prompt, request.add_special_tokens);
    return llm.encode(llm.apply_chat_template(request.messages, request.add_generation_prompt,
                                              request.enable_thinking),
                      false);
  });
  std::vector<int32_t> ids;
  if (!engine_answer(future, res, ids)) return;
  reply_json(res, 200, {{"count", ids.size()}, {"max_model_len", llm_.config().max_model_len}, {"tokens", ids}});
}

void HttpServer::handle_detokenize(const httplib::Request& req, httplib::Response& res) {
  std::vector<int32_t> ids;
  if (!parsed(res, [&] { ids = parse_detokenize_request(req.body); })) return;
  auto future = worker_->run_on_engine<std::string>([ids](LLM& llm) { return llm.decode(ids); });
  std::string text;
  if (!engine_answer(future, res, text)) return;
  reply_json(res, 200, {{"prompt", text}});
}

void HttpServer::handle_generation(const httplib::Request& req, httplib::Response& res, bool chat) {
  GenerationRequest request;
  if (!parsed(res, [&] { request = chat ? parse_chat_request(req.body) : parse_completion_request(req.body); }))
    return;
  if (!request.model.empty() && request.model != options_.served_model_name) {
    reply_error(res, 404, "the model '" + request.model + "' does not exist; this server serves '" +
                              options_.served_model_name + "'", "model");
    return;
  }
  const ResponseHeader header{(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++),
                              unix_seconds(), options_.served_model_name, chat};
  const bool stream = request.stream, include_usage = request.include_usage;
  const bool continuous_usage = request.continuous_usage;
  const bool with_logprobs = request.sampling.logprobs >= 0;
  std::shared_ptr<ChoiceSet> choices = worker_->submit(std::move(request));

  // Refusals at admission (a prompt too long, a token outside the vocabulary) are HTTP errors,
  // also for streams, so wait for the engine to take the request first.
  ChoiceSnapshot snap;
  while (!snap.error && !(stream ? snap.admitted : snap.all_finished() && snap.admitted))
    snap = stream ? choices->wait_newer(snap.version, kPollInterval) : choices->wait_done(kPollInterval);
  if (snap.error) {
    reply_error(res, snap.error_status, *snap.error);
    return;
  }
  if (!stream) {
    reply_json(res, 200, response_json(header, snap.choices, with_logprobs));
    return;
  }

  auto writer = std::make_shared<StreamWriter>(
      header, snap.choices.size(), StreamOptions{include_usage, continuous_usage, with_logprobs});
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [choices, writer](size_t, httplib::DataSink& sink) {
        const ChoiceSnapshot s =
            choices->wait_newer(writer->version(), kPollInterval, writer->sent_text(), writer->sent_logprobs());
        const std::string out = writer->events(s);
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;
        if (writer->done()) sink.done();
        return true;
      },
      [choices](bool success) {
        if (!success) choices->cancel();  // the client went away: free its engine requests
      });
}

}  // namespace nanovllm::server
