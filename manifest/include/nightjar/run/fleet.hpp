#pragma once
// Many hosts in one bucket, each under its own prefix (`<host>/` by default): `nightjar-restore --list
// --all-hosts` lists every prefix that holds backups, with its newest complete one.
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace nightjar {

struct HostBackups {
    std::string prefix;             // "web1" (the key prefix without its '/')
    std::size_t backups = 0;        // published manifests
    std::string last_success;       // id of the newest complete backup; "" when none
    std::int64_t age_seconds = -1;  // of last_success; -1 when none
    std::string error;              // the prefix could not be read ("" when it could)
};

// Every prefix directly below the bucket of the s3:// `location` (its own prefix is ignored) that holds at
// least one manifest, sorted by prefix. `config_file` gives the endpoint and credentials (repository section;
// "" = the environment). Kind::Usage for a location that is not s3://.
std::vector<HostBackups> list_all_hosts(const std::filesystem::path& location,
                                        const std::filesystem::path& config_file);
void print_host_list(const std::vector<HostBackups>& hosts, bool as_json, std::ostream& out);

}  // namespace nightjar
