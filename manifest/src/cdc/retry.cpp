#include "nightjar/cdc/retry.hpp"

#include <algorithm>
#include <thread>

#include "nightjar/core/signals.hpp"

namespace nightjar::cdc {

std::chrono::milliseconds Backoff::next() {
    current = current.count() == 0 ? initial : std::min(max, current * 2);
    return current;
}

void sleep_within(std::chrono::milliseconds duration, SteadyClock::time_point deadline, bool interruptible) {
    auto until = std::min(SteadyClock::now() + duration, deadline);
    while (SteadyClock::now() < until) {
        if (interruptible) check_interrupted();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(20)));
    }
    if (interruptible) check_interrupted();
}

}  // namespace nightjar::cdc
