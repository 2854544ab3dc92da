#pragma once
// Log lines on stderr (and optionally appended to a file): "2026-11-25T01:50:00Z INFO message".
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>

namespace nightjar::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };

struct Settings {
    Level min_level = Level::Info;  // lines below this level are dropped
    Format format = Format::Text;   // json: one object per line, for log shippers
    bool quiet = false;             // drop info lines on stderr (the file still gets them)
};
void configure(const Settings& settings);
// Appends every line to this file as well (created 0640 if missing). Kind::Storage if it cannot be opened.
void set_file(const std::filesystem::path& path);

void write(Level level, std::string_view message);
bool stderr_is_terminal();

template <typename... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}
template <typename... Parts>
void debug(const Parts&... parts) {
    write(Level::Debug, concat(parts...));
}
template <typename... Parts>
void info(const Parts&... parts) {
    write(Level::Info, concat(parts...));
}
template <typename... Parts>
void warn(const Parts&... parts) {
    write(Level::Warn, concat(parts...));
}
template <typename... Parts>
void error(const Parts&... parts) {
    write(Level::Error, concat(parts...));
}

// "1.5 MiB"
std::string human_bytes(std::uint64_t bytes);
// A duration rounded to milliseconds (for JSON), and printed with at most 3 decimals ("0.5", "12.345").
double round_seconds(double s);
std::string seconds(double s);

}  // namespace nightjar::log
