#include "nightjar/core/failpoint.hpp"

#ifdef NIGHTJAR_FAILPOINTS_ARMED
#include <csignal>
#include <cstdlib>
#endif

namespace nightjar {

#ifdef NIGHTJAR_FAILPOINTS_ARMED
void failpoint(std::string_view name) {
    static const char* armed = std::getenv("NIGHTJAR_FAILPOINT");
    static const char* action = std::getenv("NIGHTJAR_FAILPOINT_ACTION");
    if (!armed || name != armed) return;
    // "stop" freezes the process where it stands (a test can then act while it holds its lock).
    std::raise(action && std::string_view(action) == "stop" ? SIGSTOP : SIGKILL);
}
#else
void failpoint(std::string_view) {}
#endif

}  // namespace nightjar
