#include "nightjar/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "nightjar/core/error.hpp"

namespace nightjar::log {
namespace {

std::mutex mutex;
Settings settings;
int file_fd = -1;

std::string_view level_name(Level level) {
    switch (level) {
        case Level::Debug:
            return "DEBUG";
        case Level::Info:
            return "INFO";
        case Level::Warn:
            return "WARN";
        case Level::Error:
            return "ERROR";
    }
    return "INFO";
}

std::string timestamp() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void write_all(int fd, const std::string& line) {
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // logging must never fail the run
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace

void configure(const Settings& s) {
    std::lock_guard lock(mutex);
    settings = s;
}

void set_file(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) throw_errno(Kind::Usage, "log file: cannot open", path.string());
    std::lock_guard lock(mutex);
    if (file_fd >= 0) ::close(file_fd);
    file_fd = fd;
}

void write(Level level, std::string_view message) {
    std::lock_guard lock(mutex);
    if (level < settings.min_level) return;
    std::string line;
    if (settings.format == Format::Json) {
        nlohmann::json j{{"time", timestamp()}, {"level", level_name(level)}, {"message", message}};
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
        line = timestamp() + " " + std::string(level_name(level)) + " " + std::string(message) + "\n";
    }
    if (!(settings.quiet && level <= Level::Info)) write_all(2, line);
    if (file_fd >= 0) write_all(file_fd, line);
}

bool stderr_is_terminal() {
    return ::isatty(2) == 1;
}

double round_seconds(double s) {
    return std::round(s * 1000.0) / 1000.0;
}

std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", s);
    std::string out = buf;
    while (out.size() > 1 && out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
    return out;
}

std::string human_bytes(std::uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

}  // namespace nightjar::log
