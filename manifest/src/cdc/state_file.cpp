#include "nightjar/cdc/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar::cdc {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void sync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno(Kind::Storage, "cannot open directory to fsync", dir.string());
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw_errno(Kind::Storage, "fsync failed", dir.string());
}

}  // namespace

fs::path cdc_state_path(const fs::path& backup_dir) {
    return backup_dir / kCdcStateFile;
}

fs::path cdc_journal_path(const fs::path& state_dir, std::vector<std::vector<std::string>> cluster_urls) {
    for (auto& urls : cluster_urls) std::sort(urls.begin(), urls.end());
    std::sort(cluster_urls.begin(), cluster_urls.end());
    std::string key;
    for (const auto& urls : cluster_urls) {
        for (const auto& u : urls) key += u + "\n";
        key += "\n";
    }
    return state_dir / (io::sha256_hex(key).substr(0, 16) + ".json");
}

std::optional<CdcPauseState> read_cdc_state(const fs::path& file) {
    std::ifstream in(file);
    if (!in) {
        if (errno == ENOENT) return std::nullopt;
        throw Error(Kind::CdcResume,
                    "cdc state file: cannot read " + file.string() +
                        ": connectors a previous run paused may still be paused; check its permissions");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string what = "cdc state file " + file.string();
    try {
        json j = json::parse(ss.str());
        JsonFields f(j, what, Kind::CdcResume);
        f.only({"version", "owner", "pid", "backup_id", "created_at", "window_until", "connectors"});
        if (f.integer("version", 1, 1) != 1) f.fail("version", "unsupported");
        CdcPauseState s;
        s.owner = f.choice("owner", {"backup", "window", "watch", "restore"}, "backup");
        s.pid = static_cast<long>(f.integer_or("pid", 0, 1LL << 31, 0));
        s.backup_id = f.string_or("backup_id", "");
        s.created_at = f.string_or("created_at", "");
        if (f.has("window_until") && !j["window_until"].is_null()) s.window_until = f.string("window_until");
        const json& list = f.array("connectors");
        for (std::size_t i = 0; i < list.size(); ++i) {
            JsonFields c = f.element("connectors", i);
            c.only({"urls", "user", "password_file", "name", "paused_at"});
            PausedConnector p;
            p.urls = c.strings_or("urls", {});
            if (p.urls.empty()) c.fail("urls", "expected at least one URL");
            p.user = c.string_or("user", "");
            p.password_file = c.string_or("password_file", "");
            p.name = c.string("name");
            p.paused_at = c.string_or("paused_at", "");
            s.connectors.push_back(std::move(p));
        }
        return s;
    } catch (const CdcStateDamaged&) {
        throw;
    } catch (const Error& e) {
        // A field that is missing or has the wrong type: as damaged as bad JSON.
        if (e.kind() != Kind::CdcResume) throw;
        throw CdcStateDamaged(Kind::CdcResume, e.what());
    } catch (const json::exception& e) {
        throw CdcStateDamaged(
            Kind::CdcResume,
            what + ": not valid JSON (" + e.what() +
                "): connectors a previous run paused may still be paused; inspect it by hand");
    }
}

void write_cdc_state(const fs::path& file, const CdcPauseState& s) {
    json j{{"version", 1},
           {"owner", s.owner},
           {"pid", s.pid},
           {"backup_id", s.backup_id},
           {"created_at", s.created_at},
           {"connectors", json::array()}};
    j["window_until"] = s.window_until ? json(*s.window_until) : json(nullptr);
    for (const auto& c : s.connectors)
        j["connectors"].push_back({{"urls", c.urls},
                                   {"user", c.user},
                                   {"password_file", c.password_file},
                                   {"name", c.name},
                                   {"paused_at", c.paused_at}});
    std::string text = j.dump(2) + "\n";
    // Temporary name, fsync, rename, fsync of the directory: a crash leaves the old journal or the new one.
    PosixStorage dir(file.parent_path());
    auto out = dir.open_write(file.filename(), {.atomic = true, .sync = true, .mode = 0640});
    out->write(io::as_bytes(text));
    out->finish();
}

fs::path quarantine_cdc_state(const fs::path& file, std::int64_t now) {
    std::time_t t = static_cast<std::time_t>(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    fs::path aside = file;
    aside += std::string(".damaged-") + stamp;
    for (int n = 2; fs::exists(aside); ++n) {
        aside = file;
        aside += std::string(".damaged-") + stamp + "-" + std::to_string(n);
    }
    if (::rename(file.c_str(), aside.c_str()) != 0)
        throw_errno(Kind::Storage, "cannot move the damaged cdc state file aside", file.string());
    sync_dir(file.parent_path());
    return aside;
}

std::vector<std::string> salvage_connector_names(const fs::path& file) {
    std::vector<std::string> out;
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    static const std::regex name_re("\"name\"\\s*:\\s*\"([^\"\\\\]{1,200})\"");
    std::string text = ss.str().substr(0, 1 << 20);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name_re); it != std::sregex_iterator();
         ++it)
        if (std::find(out.begin(), out.end(), (*it)[1].str()) == out.end()) out.push_back((*it)[1].str());
    return out;
}

void move_cdc_state(const fs::path& from, const fs::path& to) {
    if (::rename(from.c_str(), to.c_str()) == 0) {
        sync_dir(to.parent_path());
        sync_dir(from.parent_path());
        return;
    }
    if (errno != EXDEV)
        throw_errno(Kind::Storage, "cannot move the cdc state file to " + to.string(), from.string());
    fs::path tmp = to;
    tmp += ".tmp";
    std::error_code ec;
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec)
        throw Error(Kind::Storage, "cannot copy the cdc state file " + from.string() + " to " + tmp.string() +
                                       ": " + ec.message());
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        if (fd >= 0) ::close(fd);
        throw_errno(Kind::Storage, "fsync failed", tmp.string());
    }
    ::close(fd);
    if (::rename(tmp.c_str(), to.c_str()) != 0) throw_errno(Kind::Storage, "rename failed", to.string());
    sync_dir(to.parent_path());
    remove_cdc_state(from);
}

void remove_cdc_state(const fs::path& file) {
    if (::unlink(file.c_str()) != 0) {
        if (errno == ENOENT) return;
        throw_errno(Kind::Storage, "cannot remove the cdc state file", file.string());
    }
    sync_dir(file.parent_path());
}

}  // namespace nightjar::cdc
