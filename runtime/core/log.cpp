#include "runtime/core/log.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/core/sys.hpp"

namespace brig::log {
namespace {
Options g_opts;
struct timespec g_start {};
std::string* g_phase_buf = nullptr;

std::string_view level_name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warning: return "warning";
    case Level::error: return "error";
  }
  return "error";
}

bool needs_quote(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+';
    if (!ok) return true;
  }
  return false;
}

void emit(int fd, const std::string& line) { (void)sys::write_all(fd, line); }
}  // namespace

void configure(const Options& opts) { g_opts = opts; }
const Options& options() { return g_opts; }

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void write(Level level, std::string_view msg) {
  if (level == Level::debug && !g_opts.debug) return;
  std::string line;
  if (g_opts.format == Format::json) {
    nlohmann::ordered_json j;
    j["level"] = level_name(level);
    j["msg"] = msg;
    j["time"] = sys::rfc3339_seconds();
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    std::string m = needs_quote(msg) ? quote(msg) : std::string(msg);
    line = fmt::format("time=\"{}\" level={} msg={}\n", sys::rfc3339_seconds(), level_name(level), m);
  }
  if (g_opts.file.empty()) {
    emit(STDERR_FILENO, line);
    return;
  }
  int fd = ::open(g_opts.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    emit(STDERR_FILENO, line);
    return;
  }
  emit(fd, line);
  ::close(fd);
}

void start_clock() { ::clock_gettime(CLOCK_MONOTONIC, &g_start); }

void phase(std::string_view what) {
  if (!g_opts.debug) return;
  struct timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  double ms = static_cast<double>(now.tv_sec - g_start.tv_sec) * 1e3 +
              static_cast<double>(now.tv_nsec - g_start.tv_nsec) / 1e6;
  // Page faults are much of a clone's cost (copy-on-write, text refaulted by
  // the child): counted beside the time.
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  std::string line = fmt::format("phase {} +{:.3f} ms, {} faults", what, ms, ru.ru_minflt);
  if (g_phase_buf) {
    *g_phase_buf += line;
    *g_phase_buf += '\n';
    return;
  }
  write(Level::debug, line);
}

void buffer_phases(std::string* buf) { g_phase_buf = buf; }

void replay_phases(std::string_view buf) {
  while (!buf.empty()) {
    size_t nl = buf.find('\n');
    std::string_view line = buf.substr(0, nl);
    if (!line.empty()) write(Level::debug, line);
    if (nl == std::string_view::npos) break;
    buf.remove_prefix(nl + 1);
  }
}

void fatal_line(std::string_view msg) {
  write(Level::error, msg);
  if (!g_opts.file.empty()) emit(STDERR_FILENO, std::string(msg) + "\n");
}

}  // namespace brig::log
