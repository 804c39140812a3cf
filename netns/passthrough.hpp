// A network namespace someone else made (CNI for a pod, podman's netavark:
// linux.namespaces "network" with a path) given to a container that runs in
// a microVM. The guest cannot join a host namespace; instead the namespace's
// interface is joined to a tap made in the same namespace, by a tc redirect
// each way (every frame the interface receives leaves through the tap, and
// the other way round), and the guest's NIC on that tap takes the
// interface's MAC, addresses, routes and MTU. The namespace itself is left
// as it was found once the VM is gone: the tap dies with the last holder of
// its fd (QEMU), and stop() removes the redirect from the interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "netns/attach.hpp"
#include "runtime/core/error.hpp"
#include "runtime/core/fd.hpp"

namespace brig::netns::passthrough {

inline constexpr const char* kTap = "brig-tap0";
// The redirect filter's priority on the interface (tc's "pref"): ours alone.
inline constexpr uint16_t kPrio = 0xb419;

// What start() did, kept in <owner>/passthrough.json so that a teardown
// after a shim that died can undo it.
struct Record {
  std::string netns;       // the namespace's path, as the config gave it
  std::string dev;         // its interface ("" : none besides lo, no NIC)
  bool qdisc_made = false; // the interface had no ingress qdisc before ours
  // The namespace's identity (nsfs st_dev, st_ino): a path such as
  // /proc/PID/ns/net may name another namespace by the time stop() runs.
  uint64_t ns_dev = 0, ns_ino = 0;
};
nlohmann::json to_json(const Record& r);
std::optional<Record> record_from_json(const nlohmann::json& j);
std::string record_path(const std::string& owner);

struct Joined {
  Record record;
  Fd tap;               // the tap's only queue, for QEMU (-netdev tap,fd=)
  std::string mac;      // the interface's, for the guest's NIC
  Attachment addressing;  // ip/ip6 with prefixes, gateways, MTU: for the guest's eth0
};
// Joins the interface of the namespace at `path` to a new tap there: the
// one that is up and has a MAC (a tunnel module's fallback devices, tunl0
// and the like, are down and are not counted). A namespace without one
// gives a Joined without a tap (the guest gets no NIC); one with more than
// one, or whose interface is already redirected (a second VM in the same
// namespace, or a first one's left by a shim that was killed and not yet
// deleted), is refused.
Result<Joined> start(const std::string& path, const std::string& owner);
// Removes the redirect (and the qdisc, if start made it) from the
// interface; a namespace or interface that is gone (or a path that names
// another namespace now) needs nothing.
Result<void> stop(const Record& r);
// stop() for the record in `owner`; the record goes even when stop()
// fails (what it names is then left, and the error says so); no record, no
// work.
Result<void> stop_recorded(const std::string& owner);

}  // namespace brig::netns::passthrough
