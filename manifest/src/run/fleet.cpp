#include "nightjar/run/fleet.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/run/config.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {
namespace fs = std::filesystem;

std::vector<HostBackups> list_all_hosts(const fs::path& location, const fs::path& config_file) {
    if (!is_s3_location(location))
        throw Error(Kind::Usage, "--all-hosts: " + location.string() +
                                     " is not an S3 repository: pass --backup-dir s3://bucket or a config "
                                     "with repository.type s3");
    const std::string rest = location.native().substr(5);
    const std::string bucket_url = "s3://" + rest.substr(0, rest.find('/'));
    const RepositoryConfig repo =
        config_file.empty() ? RepositoryConfig{} : load_config(config_file).repository;
    auto bucket = open_repository(bucket_url, repo);
    std::vector<HostBackups> out;
    const std::int64_t now = unix_now();
    for (const auto& e : bucket->list(".")) {
        if (!e.is_dir) continue;
        HostBackups h{.prefix = e.name};
        try {
            auto storage = open_repository(bucket_url + "/" + e.name, repo);
            RepositoryReader reader(*storage);
            const auto refs = reader.list();
            h.backups = refs.size();
            for (const auto& ref : refs) {  // newest first
                try {
                    if (reader.load(ref).status != "complete") continue;
                } catch (const Error&) {
                    continue;  // damaged: not a success
                }
                h.last_success = ref.id;
                h.age_seconds = now - parse_backup_id_time(ref.id);
                break;
            }
        } catch (const Error& err) {
            h.error = err.what();
        }
        if (h.backups > 0 || !h.error.empty()) out.push_back(std::move(h));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.prefix < b.prefix; });
    return out;
}

void print_host_list(const std::vector<HostBackups>& hosts, bool as_json, std::ostream& out) {
    if (as_json) {
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& h : hosts) {
            nlohmann::json row{{"host", h.prefix}, {"backups", h.backups}};
            if (!h.last_success.empty())
                row.update({{"last_success", h.last_success}, {"age_seconds", h.age_seconds}});
            if (!h.error.empty()) row["error"] = h.error;
            rows.push_back(std::move(row));
        }
        out << rows.dump(2) << std::endl;
        return;
    }
    out << "HOST                            BACKUPS  LAST SUCCESS\n";
    for (const auto& h : hosts) {
        char line[512];
        std::snprintf(line, sizeof line, "%-31s %7zu  %s\n", h.prefix.c_str(), h.backups,
                      !h.error.empty()         ? ("unreadable: " + h.error).c_str()
                      : h.last_success.empty() ? "none"
                                               : h.last_success.c_str());
        out << line;
    }
}

}  // namespace nightjar
