#pragma once
// Log lines on stderr (and optionally appended to a file): "2026-11-25T01:50:00Z INFO message".
// When stderr is the journal (systemd's JOURNAL_STREAM names it), stderr lines carry the syslog priority
// ("<6>message") instead of a timestamp, which journald adds itself.
#include <filesystem>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nightjar::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };

struct Settings {
    Level min_level = Level::Info;  // lines below this level are dropped
    Format format = Format::Text;   // json: one object per line, for log shippers
    bool quiet = false;             // drop info lines on stderr (the file still gets them)
};
void configure(const Settings& settings);
// True when fd 2 is the stream JOURNAL_STREAM ("<device>:<inode>") names. Read once, at the first line.
bool stderr_is_journal();

// Structured fields of JSON lines ("component", "backup_id", "database", "connector", "error_kind"): a
// Scope adds its fields to every line its thread writes while it lives; an inner Scope's field of the same
// name wins. Text lines do not show them (the message says it in words).
using Field = std::pair<std::string, std::string>;
class Scope {
public:
    Scope(std::initializer_list<Field> fields);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    std::size_t added_;
};

enum class Sink { File, Stderr, Journal };
// One line as it is written to `sink` (with its newline); `fields` are those of the line's thread.
std::string format_line(Level level, std::string_view message, const std::vector<Field>& fields,
                        Format format, Sink sink, std::string_view time);
// Appends every line to this file as well (created 0640 if missing). Kind::Storage if it cannot be opened.
void set_file(const std::filesystem::path& path);

void write(Level level, std::string_view message);
// The same with extra fields for this line only (an error's kind).
void write(Level level, std::string_view message, std::initializer_list<Field> fields);
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
