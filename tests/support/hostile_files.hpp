#pragma once
// Hostile backups of the files component, made as an attacker who can write to the backup dir would:
// a tar crafted entry by entry (any type, mode, link), a manifest that describes it (or lies about it),
// and a published backup whose digests are all correct (sealed), so only the format checks stand between
// the archive and the host. Also a hash of a whole tree, to prove that a refused restore wrote nothing.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "nightjar/io/fd.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/io/stream.hpp"
#include "nightjar/repo/manifest.hpp"
#include "nightjar/repo/repository.hpp"
#include "support/manifests.hpp"

namespace nightjar::test {

// One tar entry as the crafter writes it.
struct TarEntry {
    std::string name;  // as stored in the archive ("etc/x")
    char type = 'f';   // f file, d dir, l symlink, h hardlink, p fifo, c char, b block, s socket
    unsigned mode = 0644;
    std::string data;  // a file's content
    std::string link;  // a symlink's target, or a hardlink's earlier entry (archive name)
    std::uint64_t rdev = 0;
    std::int64_t mtime = 1700000000;
};

inline std::string craft_tar(const std::vector<TarEntry>& entries) {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax(a);
    archive_write_add_filter_none(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(
        a, &out, nullptr,
        [](archive*, void* self, const void* data, size_t n) -> la_ssize_t {
            static_cast<std::string*>(self)->append(static_cast<const char*>(data), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    for (const auto& t : entries) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, t.name.c_str());
        unsigned ft = t.type == 'd'   ? AE_IFDIR
                      : t.type == 'l' ? AE_IFLNK
                      : t.type == 'p' ? AE_IFIFO
                      : t.type == 'c' ? AE_IFCHR
                      : t.type == 'b' ? AE_IFBLK
                      : t.type == 's' ? AE_IFSOCK
                                      : AE_IFREG;
        archive_entry_set_filetype(e, ft);
        archive_entry_set_perm(e, t.mode);
        archive_entry_set_mtime(e, t.mtime, 0);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (t.type == 'l') archive_entry_set_symlink(e, t.link.c_str());
        if (t.type == 'h') archive_entry_set_hardlink(e, t.link.c_str());
        if (t.type == 'c' || t.type == 'b') archive_entry_set_rdev(e, static_cast<dev_t>(t.rdev));
        archive_entry_set_size(e, t.type == 'f' ? static_cast<la_int64_t>(t.data.size()) : 0);
        if (archive_write_header(a, e) < ARCHIVE_WARN)
            throw std::runtime_error(std::string("craft_tar: ") + archive_error_string(a));
        if (t.type == 'f' && !t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

inline std::string type_word(char t) {
    switch (t) {
        case 'd':
            return "dir";
        case 'l':
            return "symlink";
        case 'h':
            return "hardlink";
        case 'p':
            return "fifo";
        case 'c':
            return "char";
        case 'b':
            return "block";
        case 's':
            return "socket";
        default:
            return "file";
    }
}

// The manifest entry that describes `t` truthfully (path "/" + name); `as` declares another type (a lie,
// the data digest and size stay those of `t`).
inline nlohmann::json describe(const TarEntry& t, std::optional<char> as = std::nullopt) {
    char type = as.value_or(t.type);
    nlohmann::json j{{"path", "/" + t.name},
                     {"type", type_word(type)},
                     {"mode", t.mode},
                     {"uid", 0},
                     {"gid", 0},
                     {"owner", "root"},
                     {"group", "root"},
                     {"mtime", t.mtime},
                     {"size", type == 'f' ? t.data.size() : 0}};
    if (type == 'f') j["sha256"] = io::sha256_hex(std::string_view(t.data));
    if (type == 'l') j["target"] = t.link;
    if (type == 'h') j["target"] = "/" + t.link;
    if (type == 'c' || type == 'b') j["rdev"] = t.rdev;
    return j;
}

inline nlohmann::json describe_all(const std::vector<TarEntry>& entries) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& t : entries) list.push_back(describe(t));
    return list;
}

// Publishes one backup in `backup_dir` whose files artifact is `tar` and whose manifest lists `entries`;
// every size and digest is correct.
inline Artifact seal_files_backup(const std::filesystem::path& backup_dir, const std::string& tar,
                                  const nlohmann::json& entries, const std::string& id = "20240101_000000") {
    PosixStorage storage(backup_dir);
    RepositoryWriter repo(storage);
    auto lock = repo.lock();
    Staging staging = repo.begin(id, {});
    auto w = staging.artifact("files.tar.zst");
    w->write(io::as_bytes(tar));
    w->finish();
    Artifact art = w->artifact("files", "config", "tar");
    art.source = {{"entries", entries}, {"paths", nlohmann::json::array({"/"})}};
    Manifest m = complete_manifest(staging.id(), {art});
    repo.publish(std::move(staging), m);
    return art;
}

// A Reader over bytes held in memory.
class StringReader final : public io::Reader {
public:
    explicit StringReader(std::string data) : data_(std::move(data)) {}
    std::size_t read(io::MutableBytes buf) override {
        std::size_t n = std::min(buf.size(), data_.size() - pos_);
        std::memcpy(buf.data(), data_.data() + pos_, n);
        pos_ += n;
        return n;
    }

private:
    std::string data_;
    std::size_t pos_ = 0;
};

// The SHA-256 of a whole tree, never following a link: every path, type, mode, owner, size, mtime, content
// and link target. Equal before and after means nothing under `root` was written, moved or created.
inline std::string tree_hash(const std::filesystem::path& root) {
    namespace fs = std::filesystem;
    std::vector<std::string> lines;
    struct stat st {};
    if (::lstat(root.c_str(), &st) != 0) return "absent";
    if (S_ISDIR(st.st_mode))
        for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
             ++it) {
            const fs::path& p = it->path();
            struct stat s {};
            if (::lstat(p.c_str(), &s) != 0) continue;
            std::string line = p.lexically_relative(root).string() + " " + std::to_string(s.st_mode) + " " +
                               std::to_string(s.st_uid) + ":" + std::to_string(s.st_gid) + " " +
                               std::to_string(s.st_size) + " " + std::to_string(s.st_mtim.tv_sec) + "." +
                               std::to_string(s.st_mtim.tv_nsec) + " " + std::to_string(s.st_ino);
            if (S_ISLNK(s.st_mode)) line += " -> " + fs::read_symlink(p).string();
            if (S_ISREG(s.st_mode)) {
                auto r = io::FdReader::open(p, Kind::Internal);
                io::Sha256 sha;
                std::vector<std::byte> buf(1 << 16);
                while (std::size_t n = r->read(buf)) sha.update(io::Bytes(buf.data(), n));
                line += " " + sha.hex();
            }
            lines.push_back(line);
        }
    std::sort(lines.begin(), lines.end());
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return io::sha256_hex(std::string_view(all));
}

}  // namespace nightjar::test
