#include "cli/serve_command.h"

#if NANOVLLM_HAVE_SERVER
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include <pthread.h>

#include "cli/engine_options.h"
#include "nanovllm/llm.h"
#include "server/http_server.h"

namespace nanovllm::cli {
namespace {

struct ServeArgs {
  EngineOptions engine;
  server::ServerOptions server;
};

// SIGINT / SIGTERM stop the server: blocked in every thread, taken by one thread with sigwait
// (no handler, no global state).
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void run_serve(ServeArgs& a) {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: they inherit it
  LLM llm(a.engine.config);
  if (a.server.served_model_name.empty())
    a.server.served_model_name = a.engine.config.model.empty() ? a.engine.config.preset : a.engine.config.model;
  server::HttpServer http(llm, a.server);
  const int port = http.bind();
  std::fprintf(stderr,
               "[nanovllm] serving '%s' on http://%s:%d (POST /v1/completions, /v1/chat/completions; "
               "GET /v1/models, /health)\n",
               a.server.served_model_name.c_str(), a.server.host.c_str(), port);
  std::thread waiter([&http, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "[nanovllm] signal %d: stopping the server\n", sig);
    http.stop();
  });
  http.serve();
  // serve() also returns when listening fails: wake the waiter so it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
}

}  // namespace

void register_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "an OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions)");
  add_engine_options(*cmd, args->engine);
  server::ServerOptions& s = args->server;
  cmd->add_option("--host", s.host, "address to listen on (default 127.0.0.1; 0.0.0.0 for all)");
  cmd->add_option("--port", s.port, "port (0: any free port, printed at start)")->check(CLI::Range(0, 65535));
  cmd->add_option("--served-model-name", s.served_model_name,
                  "the model name clients send (default: the --model or --preset value)");
  cmd->add_option("--http-threads", s.http_threads,
                  "connections served at once (a streaming response holds one until it ends)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--api-key", s.api_key,
                  "require 'Authorization: Bearer KEY' on /v1 routes (default: open)");
  cmd->add_flag_callback("--no-request-log", [&s] { s.log_requests = false; }, "no line per request on stderr");
  cmd->callback([args] {
    require_model(args->engine);
    run_serve(*args);
  });
}

}  // namespace nanovllm::cli

#else  // built without cpp-httplib
#include "core/error.h"

namespace nanovllm::cli {
void register_serve_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("serve", "an OpenAI-compatible HTTP server (not in this build)");
  cmd->allow_extras();
  cmd->callback([] {
    throw_error("serve: this build has no HTTP server; install libcpp-httplib-dev "
                "(scripts/install.sh does) and rebuild");
  });
}
}  // namespace nanovllm::cli
#endif
