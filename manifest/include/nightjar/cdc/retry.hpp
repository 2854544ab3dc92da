#pragma once
// Retries of Kafka Connect calls: transient errors (no answer, 409, 5xx) are retried with exponential backoff
// until a deadline; anything else is thrown at once.
#include <chrono>
#include <functional>

#include "nightjar/cdc/kafka_connect.hpp"

namespace nightjar::cdc {

using SteadyClock = std::chrono::steady_clock;

struct Backoff {
    std::chrono::milliseconds initial{500};  // the first wait
    std::chrono::milliseconds max{5000};     // waits double up to this
    // The next wait (initial, 2x, 4x, ... capped at max).
    std::chrono::milliseconds next();
    std::chrono::milliseconds current{0};  // the last wait; 0 before the first
};

// Sleeps `duration`, cut short at `deadline`. With `interruptible`, a signal (signals.hpp) ends the sleep by
// throwing Kind::Interrupted; otherwise signals are left for the caller to notice later.
void sleep_within(std::chrono::milliseconds duration, SteadyClock::time_point deadline, bool interruptible);

struct RetryOptions {
    SteadyClock::time_point deadline;  // no new attempt starts after it
    Backoff backoff;                   // waits between attempts
    bool interruptible = false;        // a signal ends the waiting (throws)
    std::function<void(const KafkaConnectError&, int attempt)> on_retry;  // logs a transient failure
};

// Calls `fn` until it returns, throws a non-transient KafkaConnectError, or the deadline passes (the last
// error is rethrown). `fn` runs at least once.
template <typename F>
auto retry_transient(F&& fn, RetryOptions options) -> decltype(fn()) {
    for (int attempt = 1;; ++attempt) {
        try {
            return fn();
        } catch (const KafkaConnectError& e) {
            auto wait = options.backoff.next();
            if (!e.transient() || SteadyClock::now() + wait >= options.deadline) throw;
            if (options.on_retry) options.on_retry(e, attempt);
            sleep_within(wait, options.deadline, options.interruptible);
        }
    }
}

}  // namespace nightjar::cdc
