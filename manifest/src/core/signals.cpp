#include "nightjar/core/signals.hpp"

#include <csignal>
#include <cstring>
#include <string>

#include "nightjar/core/error.hpp"

namespace nightjar {
namespace {
volatile std::sig_atomic_t received = 0;
extern "C" void on_signal(int sig) {
    received = sig;
}
}  // namespace

void install_interrupt_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int interrupted_signal() {
    return received;
}

void check_interrupted() {
    if (int sig = received)
        throw Error(Kind::Interrupted,
                    "interrupted by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")", sig);
}

}  // namespace nightjar
