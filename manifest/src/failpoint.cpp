#include "nightjar/failpoint.hpp"

#include <csignal>
#include <cstdlib>

namespace nightjar {

void failpoint(std::string_view name) {
    static const char* armed = std::getenv("NIGHTJAR_FAILPOINT");
    if (armed && name == armed) std::raise(SIGKILL);
}

}  // namespace nightjar
