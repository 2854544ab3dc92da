#include "nightjar/core/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

#include "nightjar/core/error.hpp"

namespace nightjar::log {
namespace {

std::mutex mutex;
Settings settings;
int file_fd = -1;
thread_local std::vector<Field> scope_fields;

// The syslog priority journald reads from a "<N>" prefix: err 3, warning 4, info 6, debug 7.
char priority(Level level) {
    switch (level) {
        case Level::Debug:
            return '7';
        case Level::Info:
            return '6';
        case Level::Warn:
            return '4';
        case Level::Error:
            return '3';
    }
    return '6';
}

bool journal_check() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr || *stream == '\0') return false;
    std::string s = stream;
    auto colon = s.find(':');
    if (colon == std::string::npos) return false;
    struct stat st {};
    if (::fstat(2, &st) != 0) return false;
    try {
        return std::stoull(s.substr(0, colon)) == static_cast<unsigned long long>(st.st_dev) &&
               std::stoull(s.substr(colon + 1)) == static_cast<unsigned long long>(st.st_ino);
    } catch (const std::exception&) {
        return false;
    }
}

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

bool stderr_is_journal() {
    static const bool journal = journal_check();
    return journal;
}

Scope::Scope(std::initializer_list<Field> fields) : added_(fields.size()) {
    scope_fields.insert(scope_fields.end(), fields.begin(), fields.end());
}

Scope::~Scope() {
    scope_fields.resize(scope_fields.size() - added_);
}

std::string format_line(Level level, std::string_view message, const std::vector<Field>& fields,
                        Format format, Sink sink, std::string_view time) {
    std::string line;
    if (format == Format::Json) {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [k, v] : fields) j[k] = v;  // later (inner) fields win
        if (sink != Sink::Journal) j["time"] = time;
        j["level"] = level_name(level);
        j["message"] = message;
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (sink == Sink::Journal) {
        line = std::string(message);
    } else {
        line = std::string(time) + " " + std::string(level_name(level)) + " " + std::string(message);
    }
    if (sink == Sink::Journal) line = std::string{'<', priority(level), '>'} + line;
    return line + "\n";
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    if (fields.size() == 0) return write(level, message);
    Scope scope(fields);
    write(level, message);
}

void write(Level level, std::string_view message) {
    const bool journal = stderr_is_journal();
    std::lock_guard lock(mutex);
    if (level < settings.min_level) return;
    const std::string time = timestamp();
    if (!(settings.quiet && level <= Level::Info))
        write_all(2, format_line(level, message, scope_fields, settings.format,
                                 journal ? Sink::Journal : Sink::Stderr, time));
    if (file_fd >= 0)
        write_all(file_fd, format_line(level, message, scope_fields, settings.format, Sink::File, time));
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
