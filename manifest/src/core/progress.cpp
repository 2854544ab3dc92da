#include "nightjar/core/progress.hpp"

#include <cstdio>

#include "nightjar/core/log.hpp"

namespace nightjar {

Progress::Progress() : enabled_(log::stderr_is_terminal()) {}

void Progress::update(const std::string& label, std::uint64_t bytes) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (label != label_) {
        label_ = label;
        start_ = now;
        last_ = {};
    }
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::string rate = secs > 0.1 ? log::human_bytes(static_cast<std::uint64_t>(bytes / secs)) + "/s" : "";
    std::fprintf(stderr, "\r\033[K  %s: %s %s", label.c_str(), log::human_bytes(bytes).c_str(), rate.c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::done() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
    label_.clear();
}

}  // namespace nightjar
