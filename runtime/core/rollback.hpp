// One rollback stack per operation: every step that makes something (a state
// dir, a cgroup, a child process) pushes its undo; on error the stack unwinds
// in reverse, on success the caller commits and nothing is undone.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace brig {

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() { unwind(); }

  void push(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
  void commit() { steps_.clear(); }
  void unwind() {
    while (!steps_.empty()) {
      auto f = std::move(steps_.back());
      steps_.pop_back();
      f();
    }
  }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace brig
