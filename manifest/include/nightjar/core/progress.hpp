#pragma once
// Progress of long work on a terminal: "\r  files: 120.5 MiB at 85.2 MiB/s". Silent when stderr is not a tty.
// Several lines of work may report at once (the components of a backup run dump concurrently): each has a
// slot, and the one progress line shows every slot's latest label, in the order the slots first reported.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace nightjar {

class Progress {
public:
    Progress();
    // Called often, from any thread; prints at most every 250 ms. The slot is the label itself.
    void update(const std::string& label, std::uint64_t bytes);
    // The same for the work in `slot` (a component), now at `label` (its artifact).
    void update(const std::string& slot, const std::string& label, std::uint64_t bytes);
    // The work in `slot` has ended: its part of the line goes; the line is cleared when none is left.
    void done(const std::string& slot);
    // Clears the progress line and every slot.
    void done();
    ~Progress() { done(); }

private:
    struct Slot {
        std::string slot;
        std::string label;
        std::uint64_t bytes = 0;
        std::chrono::steady_clock::time_point start;
    };
    void print_locked(std::chrono::steady_clock::time_point now);
    void clear_locked();
    bool enabled_;
    std::mutex mutex_;
    bool shown_ = false;
    std::vector<Slot> slots_;
    std::chrono::steady_clock::time_point last_;
};

}  // namespace nightjar
