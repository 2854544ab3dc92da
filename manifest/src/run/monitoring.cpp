#include "nightjar/run/monitoring.hpp"

#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/storage.hpp"
#include "nightjar/run/drill.hpp"

namespace nightjar {

namespace {

size_t discard_body(char*, size_t size, size_t n, void*) {
    return size * n;
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string label_value(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"')
            out += std::string{'\\', c};
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

}  // namespace

void Pinger::ping(const std::string& suffix, const std::string& body) const {
    if (config_.ping_url.empty()) return;
    std::string url = config_.ping_url + suffix;
    CURL* curl = curl_easy_init();
    if (!curl) {
        log::warn("monitoring: cannot ping ", url, ": libcurl did not initialise");
        return;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(config_.timeout_s));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        log::warn("monitoring: ping ", url, " failed: ", curl_easy_strerror(rc),
                  " (the backup is not affected)");
    else if (status >= 400)
        log::warn("monitoring: ping ", url, " answered HTTP ", status, " (the backup is not affected)");
}

void Pinger::start() const {
    ping("/start", "");
}
void Pinger::success(const std::string& summary) const {
    ping("", summary);
}
void Pinger::failure(const std::string& summary) const {
    ping("/fail", summary);
}
void Pinger::log_event(const std::string& text) const {
    ping("/log", text);
}

std::string render_metrics(const RunMetrics& m, std::int64_t last_success) {
    std::ostringstream out;
    auto gauge = [&](const char* name, const char* help) {
        out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
    };
    gauge("nightjar_last_success_timestamp_seconds", "Unix time of the last successful nightjar backup run.");
    out << "nightjar_last_success_timestamp_seconds " << last_success << "\n";
    gauge("nightjar_last_run_timestamp_seconds", "Unix time the last nightjar backup run finished.");
    out << "nightjar_last_run_timestamp_seconds " << m.finished_at << "\n";
    gauge("nightjar_last_run_duration_seconds", "Wall time of the last nightjar backup run.");
    out << "nightjar_last_run_duration_seconds " << m.duration_s << "\n";
    gauge("nightjar_last_run_status", "Exit code of the last nightjar backup run (0 = success).");
    out << "nightjar_last_run_status " << m.exit_code << "\n";
    gauge("nightjar_backup_bytes", "Stored bytes of the last backup, per component.");
    for (const auto& [component, bytes] : m.component_bytes)
        out << "nightjar_backup_bytes{component=\"" << component << "\"} " << bytes << "\n";
    gauge("nightjar_backups_kept", "Published backups in the backup dir after pruning.");
    out << "nightjar_backups_kept " << m.backups_kept << "\n";
    if (!m.cdc_held_seconds.empty()) {
        gauge("nightjar_cdc_held_seconds",
              "Seconds the last backup run held each Kafka Connect connector paused (cdc.hold).");
        for (const auto& [connector, seconds] : m.cdc_held_seconds)
            out << "nightjar_cdc_held_seconds{connector=\"" << label_value(connector) << "\"} " << seconds
                << "\n";
    }
    return out.str();
}

std::int64_t read_last_success(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    const std::string key = "nightjar_last_success_timestamp_seconds ";
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) {
            try {
                return std::stoll(line.substr(key.size()));
            } catch (const std::exception&) {
                return 0;
            }
        }
    return 0;
}

void write_metrics(const std::filesystem::path& file, const RunMetrics& m) {
    std::int64_t last_success = m.exit_code == 0 ? m.finished_at : read_last_success(file);
    PosixStorage dir(file.parent_path());
    auto out = dir.open_write(file.filename(), {.atomic = true, .sync = false, .mode = 0644});
    // A drill's lines (nightjar_drill_*, run/drill.cpp) share the file: a backup run keeps them.
    std::string text = render_metrics(m, last_success) + metric_lines_with_prefix(file, "nightjar_drill_");
    out->write(io::as_bytes(text));
    out->finish();
}

}  // namespace nightjar
