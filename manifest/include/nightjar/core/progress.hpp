#pragma once
// Progress of long work on a terminal: "\r  files: 120.5 MiB at 85.2 MiB/s". Silent when stderr is not a tty.
#include <chrono>
#include <cstdint>
#include <string>

namespace nightjar {

class Progress {
public:
    Progress();
    // Called often; prints at most every 250 ms.
    void update(const std::string& label, std::uint64_t bytes);
    // Clears the progress line.
    void done();
    ~Progress() { done(); }

private:
    bool enabled_;
    bool shown_ = false;
    std::string label_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_;
};

}  // namespace nightjar
