#include "nightjar/run/offsite_journal.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/backup_index.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/repository_config.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kJournalMaxBytes = 64u << 10;

std::string journal_name(const std::string& id) {
    return std::string(kRunJournalDir) + "/" + id + ".json";
}

// A pid on this host that is gone (or a zombie: killed, not yet reaped).
bool process_gone(std::int64_t pid) {
    if (pid <= 0) return false;
    if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

std::string read_small(const Storage& storage, const std::string& rel) {
    auto in = storage.open_read(rel, {.offset = 0, .length = kJournalMaxBytes});
    std::string out;
    std::vector<std::byte> buf(8192);
    while (std::size_t n = in->read(buf)) out.append(io::as_chars({buf.data(), n}));
    return out;
}

}  // namespace

RunJournal::RunJournal(Storage& storage, std::string id) : id_(std::move(id)) {
    if (!dynamic_cast<s3::S3Storage*>(&storage)) return;
    json j{{"host", local_host_name()},
           {"pid", static_cast<std::int64_t>(::getpid())},
           {"started_at", rfc3339_utc(unix_now())},
           {"backup_id", id_}};
    auto out = storage.open_write(journal_name(id_), {.atomic = true, .sync = true, .create_only = true});
    out->write(io::as_bytes(j.dump()));
    out->finish();
    storage_ = &storage;
}

RunJournal::~RunJournal() {
    if (!storage_) return;
    try {
        storage_->remove(journal_name(id_));
    } catch (const std::exception& e) {
        log::warn("cannot remove this run's journal ", storage_->describe(journal_name(id_)), ": ", e.what(),
                  ": the next run removes it");
    }
}

namespace {

std::string heal_one(Storage& storage, const s3::S3Storage& s3, const std::string& journal,
                     const std::string& id, std::int64_t pid) {
    // Published: its plain manifest, or an encrypted backup's signed index (its commit record) is there.
    const bool published =
        storage.stat(manifest_file_name(id)).has_value() || storage.stat(index_file_name(id)).has_value();
    int aborted = 0;
    for (const auto& u : s3.client().list_multipart_uploads(s3.bucket(), s3.key(id) + "/")) {
        s3.client().abort_multipart(s3.bucket(), u.key, u.upload_id);
        ++aborted;
    }
    std::size_t objects = 0;
    if (!published) {
        objects = storage.list_prefix(id + "/").size();
        storage.remove_tree(id);
        if (storage.stat(encrypted_manifest_file_name(id))) {  // written before the index that never came
            storage.remove(encrypted_manifest_file_name(id));
            ++objects;
        }
    }
    storage.remove(journal);
    return "backup " + id + " (pid " + std::to_string(pid) + ", gone) was interrupted: aborted " +
           std::to_string(aborted) + " unfinished upload(s)" +
           (published ? "; its manifest was published, so it stays"
                      : ", removed " + std::to_string(objects) + " unpublished object(s)");
}

}  // namespace

std::vector<std::string> heal_crashed_runs(Storage& storage, const std::string& own_id) {
    std::vector<std::string> done;
    auto* s3 = dynamic_cast<s3::S3Storage*>(&storage);
    if (!s3) return done;
    const std::string host = local_host_name();
    for (const auto& e : storage.list_prefix(std::string(kRunJournalDir) + "/")) {
        const std::string name = fs::path(e.name).filename().string();
        if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
        const std::string id = name.substr(0, name.size() - 5);
        if (id == own_id || !is_backup_id(id)) continue;
        std::int64_t pid = 0;
        std::string owner;
        try {
            json j = parse_json_document(read_small(storage, e.name),
                                         "run journal " + storage.describe(e.name), Kind::Storage);
            owner = j.value("host", "");
            pid = j.value("pid", std::int64_t{0});
        } catch (const std::exception& err) {
            log::warn("run journal ", storage.describe(e.name), " cannot be read (", err.what(),
                      "): left as it is");
            continue;
        }
        if (owner != host || !process_gone(pid)) continue;  // another host's, or a live run's
        try {
            done.push_back(heal_one(storage, *s3, e.name, id, pid));
            log::warn("s3: ", done.back());
        } catch (const Error& err) {
            log::warn("s3: cannot clean up what interrupted backup ", id, " left: ", err.what(),
                      ": the next run tries again (a locked object stays until its retention ends)");
        }
    }
    return done;
}

std::vector<std::string> abort_stale_uploads(Storage& storage, std::int64_t now, std::int64_t older_than_s) {
    std::vector<std::string> done;
    auto* s3 = dynamic_cast<s3::S3Storage*>(&storage);
    if (!s3) return done;
    for (const auto& u : s3->client().list_multipart_uploads(s3->bucket(), s3->prefix())) {
        const std::int64_t started = s3::parse_s3_time(u.initiated);
        if (started <= 0 || now - started < older_than_s) continue;
        s3->client().abort_multipart(s3->bucket(), u.key, u.upload_id);
        done.push_back("aborted the multipart upload of s3://" + s3->bucket() + "/" + u.key + " (started " +
                       u.initiated + ")");
        log::info("prune: ", done.back());
    }
    return done;
}

}  // namespace nightjar
