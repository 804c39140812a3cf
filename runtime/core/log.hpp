// Logging in runc's formats. Without --log, lines go to stderr as logfmt
// (time="..." level=error msg="..."). With --log FILE the line goes to FILE in
// the chosen format (text or json) and an error is also printed plainly on
// stderr, as runc does.
#pragma once

#include <string>
#include <string_view>

namespace brig::log {

enum class Level { debug, info, warning, error };
enum class Format { text, json };

struct Options {
  std::string file;             // empty: stderr
  Format format = Format::text;
  bool debug = false;
};

void configure(const Options& opts);
const Options& options();
void write(Level level, std::string_view msg);
inline void debug(std::string_view m) { write(Level::debug, m); }
inline void warn(std::string_view m) { write(Level::warning, m); }
// An error that ends the command: logged, and printed plainly on stderr when
// the log goes to a file.
void fatal_line(std::string_view msg);

// Phase timings behind --debug: "phase WHAT +N.NNN ms, F faults": monotonic
// time since start_clock() (called first thing in main), and the minor page
// faults of this process so far (a clone child's count starts at 0). Free
// when debug is off.
void start_clock();
void phase(std::string_view what);
// A clone child that may not write to the log (its stderr is the
// container's) collects its phase lines here; the parent logs them.
void buffer_phases(std::string* buf);
void replay_phases(std::string_view buf);

// Go's strconv.Quote-style quoting used by logrus text output.
std::string quote(std::string_view s);

}  // namespace brig::log
