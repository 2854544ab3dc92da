#include "nightjar/core/progress.hpp"

#include <algorithm>
#include <cstdio>

#include "nightjar/core/log.hpp"

namespace nightjar {

Progress::Progress() : enabled_(log::stderr_is_terminal()) {}

void Progress::update(const std::string& label, std::uint64_t bytes) {
    update(label, label, bytes);
}

void Progress::update(const std::string& slot, const std::string& label, std::uint64_t bytes) {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    auto it = std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.slot == slot; });
    if (it == slots_.end()) it = slots_.insert(slots_.end(), Slot{.slot = slot, .label = "", .start = now});
    if (it->label != label) {
        it->label = label;
        it->start = now;
        if (slots_.size() == 1) last_ = {};  // a new label alone on the line is shown at once
    }
    it->bytes = bytes;
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    print_locked(now);
}

void Progress::print_locked(std::chrono::steady_clock::time_point now) {
    std::string line;
    for (const auto& s : slots_) {
        double secs = std::chrono::duration<double>(now - s.start).count();
        std::string rate =
            secs > 0.1 ? " " + log::human_bytes(static_cast<std::uint64_t>(s.bytes / secs)) + "/s" : "";
        line += (line.empty() ? "  " : "  |  ") + s.label + ": " + log::human_bytes(s.bytes) + rate;
    }
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
}

void Progress::clear_locked() {
    if (shown_) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        shown_ = false;
    }
}

void Progress::done(const std::string& slot) {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    std::erase_if(slots_, [&](const Slot& s) { return s.slot == slot; });
    clear_locked();
    if (!slots_.empty()) print_locked(std::chrono::steady_clock::now());
}

void Progress::done() {
    std::lock_guard lock(mutex_);
    slots_.clear();
    clear_locked();
}

}  // namespace nightjar
