#include "spec/jdoc.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace brig::spec::jdoc {

// Parses into a Doc without recursion: an array or object being read is a
// Frame on `open_`, and its node's span and size are set when it closes.
class Parser {
 public:
  Parser(Doc& d, std::string_view text) : d_(d) {
    d_.text_ = std::make_unique<char[]>(text.size() + 1);
    if (!text.empty()) std::memcpy(d_.text_.get(), text.data(), text.size());
    d_.text_[text.size()] = '\0';  // strtod stops here at the latest
    base_ = p_ = d_.text_.get();
    end_ = base_ + text.size();
    d_.nodes_.reserve(text.size() / 16 + 4);
  }

  // False: not JSON (the caller asks nlohmann for its words why).
  bool run() {
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xef\xbb\xbf", 3) == 0) p_ += 3;
    ws();
    if (!value()) return false;
    while (!open_.empty()) {
      Frame& f = open_.back();
      char close = f.object ? '}' : ']';
      ws();
      if (p_ == end_) return false;
      if (f.fresh) {
        f.fresh = false;
        if (*p_ == close) {
          shut();
          continue;
        }
      } else if (*p_ == ',') {
        ++p_;
        ws();
      } else if (*p_ == close) {
        shut();
        continue;
      } else {
        return false;
      }
      ++f.count;
      if (f.object) {
        if (p_ == end_ || *p_ != '"' || !string()) return false;
        ws();
        if (p_ == end_ || *p_ != ':') return false;
        ++p_;
        ws();
      }
      if (!value()) return false;  // may push: f is not used after this
    }
    ws();
    return p_ == end_;
  }

 private:
  struct Frame {
    uint32_t node;
    uint32_t count = 0;
    bool object;
    bool fresh = true;
  };

  void ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  Node& add(Type t, const char* start) {
    Node& n = d_.nodes_.emplace_back();
    n.type_ = t;
    n.src_ = std::string_view(start, 0);
    return n;
  }
  void done(Node& n) { n.src_ = std::string_view(n.src_.data(), static_cast<size_t>(p_ - n.src_.data())); }

  void shut() {
    Frame& f = open_.back();
    ++p_;
    Node& n = d_.nodes_[f.node];
    n.n_ = f.count;
    n.span_ = static_cast<uint32_t>(d_.nodes_.size() - f.node);
    done(n);
    open_.pop_back();
  }

  bool literal(std::string_view word, Type t, bool b) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) return false;
    Node& n = add(t, p_);
    n.u_.b = b;
    p_ += word.size();
    done(n);
    return true;
  }

  // One value; an array or object is opened (its contents come in run()).
  bool value() {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
      case '[': {
        if (d_.nodes_.size() >= UINT32_MAX - 1) return false;
        bool obj = *p_ == '{';
        add(obj ? Type::object : Type::array, p_);
        open_.push_back(Frame{static_cast<uint32_t>(d_.nodes_.size() - 1), 0, obj});
        ++p_;
        return true;
      }
      case '"': return string();
      case 't': return literal("true", Type::boolean, true);
      case 'f': return literal("false", Type::boolean, false);
      case 'n': return literal("null", Type::null, false);
      default: return number();
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool number() {
    const char* start = p_;
    bool neg = false;
    if (*p_ == '-') {
      neg = true;
      ++p_;
    }
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && digit(*p_)) ++p_;
    } else {
      return false;
    }
    const char* int_end = p_;
    bool real = false;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
      real = true;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return false;
      while (p_ != end_ && digit(*p_)) ++p_;
      real = true;
    }
    Node& n = add(Type::number_float, start);
    if (!real) {
      uint64_t v = 0;
      bool fits = true;
      for (const char* q = start + (neg ? 1 : 0); q != int_end; ++q) {
        auto dgt = static_cast<uint64_t>(*q - '0');
        if (v > (UINT64_MAX - dgt) / 10) {
          fits = false;
          break;
        }
        v = v * 10 + dgt;
      }
      if (fits && !neg) {
        n.type_ = Type::number_unsigned;
        n.u_.u = v;
      } else if (fits && v <= uint64_t{1} << 63) {
        n.type_ = Type::number_integer;
        n.u_.i = v == uint64_t{1} << 63 ? INT64_MIN : -static_cast<int64_t>(v);
      }
    }
    if (n.type_ == Type::number_float) {
      // strtod reads '.' as the decimal point in the "C" locale, which brig
      // never changes (nlohmann swaps in the locale's point instead).
      char* stop = nullptr;
      double d = std::strtod(start, &stop);
      if (stop != p_ || !std::isfinite(d)) return false;  // nlohmann: "number overflow"
      n.u_.d = d;
    }
    done(n);
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Four hex digits at q, or -1.
  int u16(const char* q) const {
    if (end_ - q < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex(q[i]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  }

  // The length of a well-formed UTF-8 sequence at p_ (RFC 3629), or 0.
  size_t utf8_seq() const {
    auto b = [&](ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
    auto in = [&](ptrdiff_t i, unsigned lo, unsigned hi) { return p_ + i < end_ && b(i) >= lo && b(i) <= hi; };
    unsigned c = b(0);
    if (c >= 0xc2 && c <= 0xdf) return in(1, 0x80, 0xbf) ? 2 : 0;
    if (c == 0xe0) return in(1, 0xa0, 0xbf) && in(2, 0x80, 0xbf) ? 3 : 0;
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf) ? 3 : 0;
    if (c == 0xed) return in(1, 0x80, 0x9f) && in(2, 0x80, 0xbf) ? 3 : 0;
    if (c == 0xf0) return in(1, 0x90, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    if (c >= 0xf1 && c <= 0xf3) return in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    if (c == 0xf4) return in(1, 0x80, 0x8f) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf) ? 4 : 0;
    return 0;
  }

  // A string at p_ (its opening quote): checked in one pass, and decoded
  // in a second only if it holds an escape.
  bool string() {
    const char* quote = p_++;
    const char* start = p_;
    bool escaped = false;
    for (;;) {
      if (p_ == end_) return false;
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c < 0x20) return false;
      if (c < 0x80 && c != '\\') {
        ++p_;
        continue;
      }
      if (c >= 0x80) {
        size_t n = utf8_seq();
        if (n == 0) return false;
        p_ += n;
        continue;
      }
      escaped = true;
      if (++p_ == end_) return false;
      switch (*p_) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': ++p_; break;
        case 'u': {
          int v = u16(p_ + 1);
          if (v < 0 || (v >= 0xdc00 && v <= 0xdfff)) return false;
          p_ += 5;
          if (v >= 0xd800 && v <= 0xdbff) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            int lo = u16(p_ + 2);
            if (lo < 0xdc00 || lo > 0xdfff) return false;
            p_ += 6;
          }
          break;
        }
        default: return false;
      }
    }
    Node& n = add(Type::string, quote);
    if (!escaped) {
      n.s_ = start;
      n.n_ = static_cast<uint32_t>(p_ - start);
    } else {
      if (!d_.decoded_) {
        // Decoded strings are never longer than their JSON text.
        d_.decoded_ = std::make_unique<char[]>(static_cast<size_t>(end_ - base_));
        dec_ = d_.decoded_.get();
      }
      n.s_ = dec_;
      decode(start, p_);
      n.n_ = static_cast<uint32_t>(dec_ - n.s_);
    }
    ++p_;
    done(n);
    return true;
  }

  void put_utf8(uint32_t cp) {
    if (cp < 0x80) {
      *dec_++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
      *dec_++ = static_cast<char>(0xc0 | (cp >> 6));
      *dec_++ = static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *dec_++ = static_cast<char>(0xe0 | (cp >> 12));
      *dec_++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *dec_++ = static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *dec_++ = static_cast<char>(0xf0 | (cp >> 18));
      *dec_++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *dec_++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *dec_++ = static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // [q, e): a string's content, already checked.
  void decode(const char* q, const char* e) {
    while (q != e) {
      if (*q != '\\') {
        *dec_++ = *q++;
        continue;
      }
      char c = q[1];
      q += 2;
      switch (c) {
        case 'b': *dec_++ = '\b'; break;
        case 'f': *dec_++ = '\f'; break;
        case 'n': *dec_++ = '\n'; break;
        case 'r': *dec_++ = '\r'; break;
        case 't': *dec_++ = '\t'; break;
        case 'u': {
          auto cp = static_cast<uint32_t>(u16(q));
          q += 4;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            auto lo = static_cast<uint32_t>(u16(q + 2));
            q += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          put_utf8(cp);
          break;
        }
        default: *dec_++ = c; break;  // " \ /
      }
    }
  }

  Doc& d_;
  const char* base_;
  const char* p_;
  const char* end_;
  char* dec_ = nullptr;
  std::vector<Frame> open_;
};

namespace {
// nlohmann's words for why `text` is not JSON.
std::string why_not_json(std::string_view text) {
  try {
    auto accepted = nlohmann::json::parse(text.begin(), text.end());
    (void)accepted;
  } catch (const nlohmann::json::exception& e) {
    // parse_error, and out_of_range for a number no double holds ("1e400").
    std::string w = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> drop the tag.
    if (auto pos = w.find("] "); pos != std::string::npos) w = w.substr(pos + 2);
    return w;
  }
  // Both parsers are meant to agree (fuzz_jdoc); should they not, this
  // one's answer stands: it is the one whose document would be read.
  return "not accepted by brig's reader";
}
}  // namespace

std::string dump_of(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Doc> parse(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of the input, so its
  // message would not name it.
  if (auto z = text.find('\0'); z != std::string_view::npos)
    return fail(Error::plain(fmt::format("invalid JSON: a NUL byte at offset {}", z)));
  if (text.size() >= UINT32_MAX) return fail(Error::plain("invalid JSON: the text is 4 GiB or more"));
  Doc d;
  if (!Parser(d, text).run()) return fail(Error::plain(fmt::format("invalid JSON: {}", why_not_json(text))));
  return d;
}

}  // namespace brig::spec::jdoc
