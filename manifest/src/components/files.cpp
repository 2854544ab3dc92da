#include "nightjar/components/files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <set>

#include "nightjar/error.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/json_fields.hpp"
#include "nightjar/log.hpp"
#include "nightjar/repository.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

bool is_valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
        if (len == 2 && c < 0xC2) return false;  // overlong
        i += len;
    }
    return true;
}

namespace {

constexpr const char* kArtifactFile = "files.tar.zst";
constexpr const char* kReplacedPrefix = ".nightjar-replaced-";

// One entry of the archive as the manifest records it. `path` is absolute ("/etc/x"), raw bytes.
struct FileEntry {
    std::string path;
    char type = 'f';  // 'f' file, 'd' directory, 'l' symlink
    std::uint32_t mode = 0;
    std::uint32_t uid = 0, gid = 0;
    std::string owner, group;
    std::int64_t mtime = 0;
    std::int64_t mtime_nsec = 0;
    std::uint64_t size = 0;
    std::string sha256;  // files only
    std::string target;  // symlinks only, raw bytes
};

std::string type_name(char t) {
    return t == 'd' ? "dir" : t == 'l' ? "symlink" : "file";
}

std::string to_hex(std::string_view s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::string from_hex(const std::string& hex, const JsonFields& f, std::string_view key) {
    if (hex.size() % 2) f.fail(key, "odd-length hex");
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        auto v = [&](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            f.fail(key, "not hex");
        };
        out.push_back(static_cast<char>(v(hex[i]) * 16 + v(hex[i + 1])));
    }
    return out;
}

void put_bytes(json& j, const std::string& key, const std::string& value) {
    if (is_valid_utf8(value))
        j[key] = value;
    else
        j[key + "_hex"] = to_hex(value);
}

std::string get_bytes(const JsonFields& f, const std::string& key) {
    if (f.has(key + "_hex")) return from_hex(f.string(key + "_hex"), f, key + "_hex");
    return f.string(key);
}

json entry_json(const FileEntry& e) {
    json j{{"type", type_name(e.type)},
           {"mode", e.mode},
           {"uid", e.uid},
           {"gid", e.gid},
           {"owner", e.owner},
           {"group", e.group},
           {"mtime", e.mtime},
           {"mtime_nsec", e.mtime_nsec},
           {"size", e.size}};
    put_bytes(j, "path", e.path);
    if (e.type == 'f') j["sha256"] = e.sha256;
    if (e.type == 'l') put_bytes(j, "target", e.target);
    return j;
}

FileEntry entry_from_json(const JsonFields& f) {
    FileEntry e;
    e.path = get_bytes(f, "path");
    std::string t = f.choice("type", {"file", "dir", "symlink"}, "file");
    e.type = t == "dir" ? 'd' : t == "symlink" ? 'l' : 'f';
    e.mode = static_cast<std::uint32_t>(f.integer("mode", 0, 07777));
    e.uid = static_cast<std::uint32_t>(f.integer("uid", 0, 0xFFFFFFFFLL));
    e.gid = static_cast<std::uint32_t>(f.integer("gid", 0, 0xFFFFFFFFLL));
    e.owner = f.string_or("owner", "");
    e.group = f.string_or("group", "");
    e.mtime = f.integer("mtime", INT64_MIN, INT64_MAX);
    e.mtime_nsec = f.integer_or("mtime_nsec", 0, 999999999, 0);
    e.size = f.uint64("size");
    if (e.type == 'f') {
        e.sha256 = f.string("sha256");
        if (!io::is_sha256_hex(e.sha256)) f.fail("sha256", "malformed SHA-256");
    }
    if (e.type == 'l') e.target = get_bytes(f, "target");
    return e;
}

std::vector<FileEntry> entries_of(const Artifact& artifact) {
    JsonFields source(artifact.source, "manifest artifact " + artifact.name, Kind::Verification, "/source");
    std::vector<FileEntry> out;
    const json& list = source.array("entries");
    for (std::size_t i = 0; i < list.size(); ++i)
        out.push_back(entry_from_json(source.element("entries", i)));
    return out;
}

// "/etc/x" -> "etc/x": names inside the archive are relative to the restore root.
std::string archive_name(const std::string& abs_path) {
    std::size_t i = abs_path.find_first_not_of('/');
    return i == std::string::npos ? "." : abs_path.substr(i);
}

std::string user_name(uid_t uid) {
    static std::map<uid_t, std::string> cache;
    if (auto it = cache.find(uid); it != cache.end()) return it->second;
    struct passwd pw {
    }, *res = nullptr;
    char buf[4096];
    std::string name = (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) ? res->pw_name : "";
    return cache[uid] = name;
}

std::string group_name(gid_t gid) {
    static std::map<gid_t, std::string> cache;
    if (auto it = cache.find(gid); it != cache.end()) return it->second;
    struct group gr {
    }, *res = nullptr;
    char buf[4096];
    std::string name = (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res) ? res->gr_name : "";
    return cache[gid] = name;
}

bool has_glob(const std::string& s) {
    return s.find_first_of("*?[") != std::string::npos;
}

bool excluded(const std::string& path, const std::vector<std::string>& patterns) {
    std::string base = fs::path(path).filename().string();
    for (const auto& p : patterns)
        if (fnmatch(p.c_str(), path.c_str(), 0) == 0 || fnmatch(p.c_str(), base.c_str(), 0) == 0) return true;
    return false;
}

// The walk of the configured paths: every path to archive (sorted, no duplicates) and what went wrong.
struct Selection {
    std::vector<std::string> paths;
    std::vector<std::string> problems;  // unreadable or missing: fatal under on_unreadable=fail
    std::uint64_t bytes = 0;
};

void walk(const std::string& path, const FilesConfig& cfg, std::set<std::string>& seen, Selection& sel) {
    if (excluded(path, cfg.exclude) || !seen.insert(path).second) return;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        sel.problems.push_back("cannot read " + path + ": " + std::strerror(errno));
        return;
    }
    if (S_ISREG(st.st_mode)) {
        if (::access(path.c_str(), R_OK) != 0) {
            sel.problems.push_back("cannot read " + path + ": " + std::strerror(errno));
            return;
        }
        sel.bytes += static_cast<std::uint64_t>(st.st_size);
    } else if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
        return;  // sockets, fifos and devices are not configuration
    }
    sel.paths.push_back(path);
    if (!S_ISDIR(st.st_mode)) return;
    std::error_code ec;
    fs::directory_iterator it(path, ec);
    if (ec) {
        sel.problems.push_back("cannot read directory " + path + ": " + ec.message());
        return;
    }
    std::vector<std::string> children;
    for (const auto& child : it) children.push_back(child.path().string());
    std::sort(children.begin(), children.end());
    for (const auto& child : children) walk(child, cfg, seen, sel);
}

Selection select(const FilesConfig& cfg) {
    Selection sel;
    std::set<std::string> seen;
    for (const auto& p : cfg.paths) {
        std::string path = p.size() > 1 && p.back() == '/' ? p.substr(0, p.size() - 1) : p;
        if (!has_glob(path)) {
            walk(path, cfg, seen, sel);
            continue;
        }
        glob_t g{};
        int rc = ::glob(path.c_str(), GLOB_NOSORT, nullptr, &g);
        if (rc == GLOB_NOMATCH) sel.problems.push_back("no file matches " + path);
        std::vector<std::string> matches(g.gl_pathv, g.gl_pathv + g.gl_pathc);
        globfree(&g);
        std::sort(matches.begin(), matches.end());
        for (const auto& m : matches) walk(m, cfg, seen, sel);
    }
    return sel;
}

// libarchive callbacks over our streams. Exceptions are carried across libarchive's C frames.
struct ArchiveSink {
    io::Writer& out;
    std::exception_ptr error;
    static la_ssize_t write(archive*, void* self, const void* data, size_t n) {
        auto* me = static_cast<ArchiveSink*>(self);
        try {
            me->out.write(io::Bytes(static_cast<const std::byte*>(data), n));
            return static_cast<la_ssize_t>(n);
        } catch (...) {
            me->error = std::current_exception();
            return -1;
        }
    }
};

struct ArchiveSource {
    io::Reader& in;
    std::vector<std::byte> buf = std::vector<std::byte>(io::kChunkSize);
    std::exception_ptr error;
    static la_ssize_t read(archive*, void* self, const void** out) {
        auto* me = static_cast<ArchiveSource*>(self);
        try {
            std::size_t n = me->in.read(me->buf);
            *out = me->buf.data();
            return static_cast<la_ssize_t>(n);
        } catch (...) {
            me->error = std::current_exception();
            return -1;
        }
    }
    void rethrow() const {
        if (error) std::rethrow_exception(error);
    }
};

struct ArchiveHandle {
    archive* a;
    bool reader;
    ~ArchiveHandle() {
        if (reader)
            archive_read_free(a);
        else
            archive_write_free(a);
    }
};

std::string archive_message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown error";
}

// Opens a tar reader over `content`.
void open_tar(archive* a, ArchiveSource& src, const std::string& what) {
    archive_read_support_format_tar(a);
    archive_read_support_filter_none(a);
    int rc = archive_read_open(a, &src, nullptr, &ArchiveSource::read, nullptr);
    src.rethrow();
    if (rc != ARCHIVE_OK)
        throw Error(Kind::Verification, what + ": not a readable tar archive: " + archive_message(a));
}

// Next header, or nullptr at the end. Read errors are Kind::Verification naming the artifact.
archive_entry* next_entry(archive* a, ArchiveSource& src, const std::string& what) {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(a, &entry);
    src.rethrow();
    if (rc == ARCHIVE_EOF) return nullptr;
    if (rc < ARCHIVE_WARN)
        throw Error(Kind::Verification, what + ": archive is damaged: " + archive_message(a));
    return entry;
}

// Reads the current entry's data, handing each piece to `each`; returns its SHA-256.
template <typename Each>
std::string read_entry_data(archive* a, ArchiveSource& src, const std::string& what, Each&& each) {
    io::Sha256 sha;
    std::vector<std::byte> buf(256 * 1024);
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
        src.rethrow();
        if (n < 0) throw Error(Kind::Verification, what + ": archive is damaged: " + archive_message(a));
        if (n == 0) break;
        io::Bytes piece(buf.data(), static_cast<std::size_t>(n));
        sha.update(piece);
        each(piece);
    }
    return sha.hex();
}

// A path as log lines show it: control characters escaped, invalid UTF-8 as hex.
std::string display(const std::string& raw) {
    if (!is_valid_utf8(raw)) return "(hex) " + to_hex(raw);
    std::string out;
    for (char c : raw) {
        if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Lexically: does a symlink at `name` (relative to the root) pointing at `target` stay inside the root?
bool link_stays_inside(const std::string& name, const std::string& target, bool root_is_slash) {
    if (target.empty()) return false;
    if (target[0] == '/') return root_is_slash;
    int depth = 0;
    fs::path parent = fs::path(name).parent_path();
    for (const auto& part : parent)
        if (part != "." && !part.empty()) ++depth;
    for (const auto& part : fs::path(target)) {
        if (part == "..") {
            if (--depth < 0) return false;
        } else if (part != "." && !part.empty()) {
            ++depth;
        }
    }
    return true;
}

// The entry's path as the manifest names it: libarchive reports directories with a trailing slash.
std::string entry_name(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    std::string name = raw ? raw : "";
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    return name;
}

enum class Change { New, Changed, Unchanged };

Change compare_with_target(const FileEntry& e, const fs::path& dest) {
    struct stat st {};
    if (::lstat(dest.c_str(), &st) != 0) return Change::New;
    char t = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : S_ISREG(st.st_mode) ? 'f' : '?';
    if (t != e.type) return Change::Changed;
    if ((st.st_mode & 07777) != e.mode && e.type != 'l') return Change::Changed;
    if (e.type == 'd') return Change::Unchanged;  // a directory's contents are judged entry by entry
    if (st.st_mtim.tv_sec != e.mtime) return Change::Changed;
    if (e.type == 'l') {
        std::string buf(4096, '\0');
        ssize_t n = ::readlink(dest.c_str(), buf.data(), buf.size());
        return n >= 0 && buf.substr(0, static_cast<std::size_t>(n)) == e.target ? Change::Unchanged
                                                                                : Change::Changed;
    }
    if (static_cast<std::uint64_t>(st.st_size) != e.size) return Change::Changed;
    int fd = ::open(dest.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Change::Changed;
    io::FdReader reader(io::UniqueFd(fd), dest.string());
    io::Sha256 sha;
    std::vector<std::byte> buf(256 * 1024);
    while (std::size_t n = reader.read(buf)) sha.update(io::Bytes(buf.data(), n));
    return sha.hex() == e.sha256 ? Change::Unchanged : Change::Changed;
}

// Restores the caller's working directory when it goes out of scope.
class ScopedChdir {
public:
    explicit ScopedChdir(const fs::path& dir) {
        saved_ = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (saved_ < 0) throw_errno(Kind::RestoreFailed, "cannot open the current directory", ".");
        if (::chdir(dir.c_str()) != 0) {
            ::close(saved_);
            throw_errno(Kind::RestoreFailed, "cannot enter restore target", dir.string());
        }
    }
    ~ScopedChdir() {
        if (::fchdir(saved_) != 0) log::warn("could not return to the previous working directory");
        ::close(saved_);
    }

private:
    int saved_ = -1;
};

}  // namespace

CheckReport FilesComponent::check() const {
    CheckReport report;
    if (!config_) return report;
    Selection sel = select(*config_);
    report.estimated_bytes = sel.bytes;
    report.plan.push_back("files: " + std::to_string(sel.paths.size()) + " entries, " +
                          log::human_bytes(sel.bytes) + " from " + std::to_string(config_->paths.size()) +
                          " configured path(s)");
    for (auto& p : sel.problems)
        (config_->on_unreadable == "fail" ? report.problems : report.warnings).push_back(p);
    return report;
}

DumpResult FilesComponent::dump(DumpContext& context, Staging& staging) {
    if (!config_) throw Error(Kind::Internal, "files component has no configuration");
    const bool fail_on_unreadable = config_->on_unreadable == "fail";
    DumpResult result;
    Selection sel = select(*config_);
    for (const auto& p : sel.problems) {
        if (fail_on_unreadable)
            throw Error(Kind::SourceUnavailable,
                        "files: " + p + " (set files.on_unreadable to \"warn\" to skip it)");
        result.warnings.push_back(p);
    }

    auto out = staging.artifact(kArtifactFile, [&context](std::uint64_t n) {
        if (context.progress) context.progress("files", n);
    });
    ArchiveSink sink{*out, nullptr};
    ArchiveHandle tar{archive_write_new(), false};
    auto check = [&](int rc, const std::string& what) {
        if (sink.error) std::rethrow_exception(sink.error);
        if (rc < ARCHIVE_WARN) throw Error(Kind::Storage, "files: " + what + ": " + archive_message(tar.a));
    };
    check(archive_write_set_format_pax(tar.a), "tar format");
    check(archive_write_add_filter_none(tar.a), "tar filter");
    check(archive_write_open(tar.a, &sink, nullptr, &ArchiveSink::write, nullptr), "open archive");

    std::vector<FileEntry> entries;
    std::vector<std::byte> buf(256 * 1024);
    auto skip = [&](const std::string& path, const std::string& why) {
        std::string msg = path + ": " + why;
        if (fail_on_unreadable) throw Error(Kind::SourceUnavailable, "files: " + msg);
        result.warnings.push_back(msg);
    };
    for (const auto& path : sel.paths) {
        if (context.check_interrupted) context.check_interrupted();
        struct stat st {};
        io::UniqueFd fd;
        if (::lstat(path.c_str(), &st) != 0) {
            skip(path, std::string("vanished while backing up: ") + std::strerror(errno));
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            fd = io::UniqueFd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
                skip(path, std::string("cannot read: ") + std::strerror(errno));
                continue;
            }
        }
        FileEntry e;
        e.path = path;
        e.type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.owner = user_name(st.st_uid);
        e.group = group_name(st.st_gid);
        e.mtime = st.st_mtim.tv_sec;
        e.mtime_nsec = st.st_mtim.tv_nsec;
        e.size = e.type == 'f' ? static_cast<std::uint64_t>(st.st_size) : 0;
        if (e.type == 'l') {
            std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
            ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
            if (n < 0) {
                skip(path, std::string("cannot read link: ") + std::strerror(errno));
                continue;
            }
            e.target = target.substr(0, static_cast<std::size_t>(n));
        }

        archive_entry* entry = archive_entry_new();
        archive_entry_copy_stat(entry, &st);
        archive_entry_copy_pathname(entry, archive_name(path).c_str());
        if (!e.owner.empty()) archive_entry_copy_uname(entry, e.owner.c_str());
        if (!e.group.empty()) archive_entry_copy_gname(entry, e.group.c_str());
        if (e.type == 'l') archive_entry_copy_symlink(entry, e.target.c_str());
        int rc = archive_write_header(tar.a, entry);
        archive_entry_free(entry);
        check(rc, "cannot archive " + path);

        if (e.type == 'f') {
            // The header promised st_size bytes: a file that grows is cut there, one that shrinks is padded.
            io::FdReader reader(std::move(fd), path);
            io::Sha256 sha;
            std::uint64_t left = e.size;
            while (left > 0) {
                std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
                std::size_t n = reader.read(io::MutableBytes(buf.data(), want));
                if (n == 0) {
                    result.warnings.push_back(path + ": file shrank while being read; padded with zeros");
                    std::fill(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(want), std::byte{0});
                    n = want;
                }
                sha.update(io::Bytes(buf.data(), n));
                la_ssize_t w = archive_write_data(tar.a, buf.data(), n);
                check(w < 0 ? ARCHIVE_FATAL : ARCHIVE_OK, "cannot archive " + path);
                left -= n;
            }
            e.sha256 = sha.hex();
        }
        entries.push_back(std::move(e));
    }
    check(archive_write_close(tar.a), "finish archive");
    out->finish();

    Artifact artifact = out->artifact("files", "config", "tar");
    json list = json::array();
    std::uint64_t file_bytes = 0;
    for (const auto& e : entries) {
        list.push_back(entry_json(e));
        file_bytes += e.size;
    }
    artifact.source = {{"entries", list}, {"paths", config_->paths}, {"exclude", config_->exclude}};
    result.artifacts.push_back(std::move(artifact));
    result.details = {{"entries", entries.size()}, {"bytes", file_bytes}, {"warnings", result.warnings}};
    return result;
}

VerifyOutcome FilesComponent::verify(const Artifact& artifact, io::Reader& content) const {
    std::map<std::string, FileEntry> expected;
    for (auto& e : entries_of(artifact)) expected.emplace(archive_name(e.path), std::move(e));
    std::string what = "artifact " + artifact.path;
    ArchiveHandle tar{archive_read_new(), true};
    ArchiveSource src{content, std::vector<std::byte>(io::kChunkSize), nullptr};
    open_tar(tar.a, src, what);
    std::vector<std::string> wrong;
    std::set<std::string> seen;
    while (archive_entry* entry = next_entry(tar.a, src, what)) {
        std::string name = entry_name(entry);
        std::string digest = read_entry_data(tar.a, src, what, [](io::Bytes) {});
        auto it = expected.find(name);
        if (it == expected.end()) {
            wrong.push_back("entry not in the manifest: " + display(name));
            continue;
        }
        seen.insert(name);
        const FileEntry& e = it->second;
        if (e.type == 'f' && digest != e.sha256)
            wrong.push_back("content differs from the manifest: " + display(e.path));
        if (e.type == 'l' && (archive_entry_symlink(entry) ? archive_entry_symlink(entry) : "") != e.target)
            wrong.push_back("link target differs from the manifest: " + display(e.path));
    }
    for (const auto& [name, e] : expected)
        if (!seen.count(name)) wrong.push_back("missing from the archive: " + display(e.path));
    if (wrong.empty()) return {};
    std::string detail = wrong.front();
    if (wrong.size() > 1) detail += " (and " + std::to_string(wrong.size() - 1) + " more)";
    return {VerifyStatus::FormatInvalid, detail};
}

RestorePlan FilesComponent::plan_restore(const Artifact& artifact, const RestoreOptions& options) const {
    RestorePlan plan;
    const bool to_slash = !options.target_dir;
    const fs::path root = options.target_dir.value_or("/");
    int counts[3] = {0, 0, 0};
    for (const auto& e : entries_of(artifact)) {
        std::string name = archive_name(e.path);
        if (!is_safe_relative(name) || name.rfind(kReplacedPrefix, 0) == 0) {
            plan.refusals.push_back("unsafe path in backup (absolute or with ..): " + display(e.path));
            continue;
        }
        if (e.type == 'l' && !link_stays_inside(name, e.target, to_slash)) {
            plan.refusals.push_back("symlink leads outside the restore target: " + display(e.path) + " -> " +
                                    display(e.target));
            continue;
        }
        Change c = compare_with_target(e, root / name);
        ++counts[static_cast<int>(c)];
        if (c != Change::Unchanged)
            plan.lines.push_back(std::string(c == Change::New ? "new     " : "changed ") +
                                 display((root / name).string()));
    }
    plan.summary = {
        {"target", root.string()}, {"new", counts[0]}, {"changed", counts[1]}, {"unchanged", counts[2]}};
    plan.lines.push_back("files: " + std::to_string(counts[0]) + " new, " + std::to_string(counts[1]) +
                         " changed, " + std::to_string(counts[2]) + " unchanged under " + root.string());
    return plan;
}

RestoreReport FilesComponent::restore(const Artifact& artifact, io::Reader& content,
                                      const RestoreOptions& options) {
    RestorePlan plan = plan_restore(artifact, options);
    if (!plan.refusals.empty()) {
        std::string msg = "files: restore refused, nothing was written: " + plan.refusals.front();
        if (plan.refusals.size() > 1) msg += " (and " + std::to_string(plan.refusals.size() - 1) + " more)";
        throw Error(Kind::RestoreFailed, msg);
    }
    const fs::path root = options.target_dir.value_or("/");
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec)
        throw Error(Kind::RestoreFailed,
                    "files: cannot create restore target " + root.string() + ": " + ec.message());

    std::map<std::string, FileEntry> expected;
    for (auto& e : entries_of(artifact)) expected.emplace(archive_name(e.path), std::move(e));
    const std::string replaced_dir =
        std::string(kReplacedPrefix) + (options.backup_id.empty() ? "restore" : options.backup_id);

    RestoreReport report;
    int written = 0, unchanged = 0, replaced = 0;
    std::string what = "artifact " + artifact.path;
    ScopedChdir in_target(root);
    ArchiveHandle tar{archive_read_new(), true};
    ArchiveSource src{content, std::vector<std::byte>(io::kChunkSize), nullptr};
    open_tar(tar.a, src, what);
    ArchiveHandle disk{archive_write_disk_new(), false};
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
    if (::geteuid() == 0) flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(disk.a, flags);
    archive_write_disk_set_standard_lookup(disk.a);

    while (archive_entry* entry = next_entry(tar.a, src, what)) {
        std::string name = entry_name(entry);
        auto it = expected.find(name);
        const char* hardlink = archive_entry_hardlink(entry);
        if (it == expected.end() || !is_safe_relative(name) || hardlink) {
            report.problems.push_back("refused archive entry not described by the manifest: " +
                                      display(name));
            archive_read_data_skip(tar.a);
            continue;
        }
        const FileEntry& e = it->second;
        Change change = compare_with_target(e, name);
        if (change == Change::Unchanged) {
            ++unchanged;
            read_entry_data(tar.a, src, what, [](io::Bytes) {});
            continue;
        }
        struct stat st {};
        bool exists = ::lstat(name.c_str(), &st) == 0;
        if (exists && !(S_ISDIR(st.st_mode) && e.type == 'd')) {
            // Keep what we replace, so an operator can undo the restore by hand.
            fs::path aside = fs::path(replaced_dir) / name;
            fs::create_directories(aside.parent_path(), ec);
            if (ec || ::rename(name.c_str(), aside.c_str()) != 0)
                throw_errno(Kind::RestoreFailed, "files: cannot move aside the file to be replaced",
                            (root / name).string());
            ++replaced;
        }
        if (archive_write_header(disk.a, entry) < ARCHIVE_WARN) {
            report.problems.push_back("cannot restore " + display((root / name).string()) + ": " +
                                      archive_message(disk.a));
            archive_read_data_skip(tar.a);
            continue;
        }
        std::string digest = read_entry_data(tar.a, src, what, [&](io::Bytes piece) {
            if (archive_write_data(disk.a, piece.data(), piece.size()) < 0)
                throw Error(Kind::RestoreFailed, "files: cannot write " + display((root / name).string()) +
                                                     ": " + archive_message(disk.a));
        });
        if (archive_write_finish_entry(disk.a) < ARCHIVE_WARN)
            report.problems.push_back("cannot finish " + display((root / name).string()) + ": " +
                                      archive_message(disk.a));
        if (e.type == 'f' && digest != e.sha256)
            report.problems.push_back("restored content differs from the manifest: " +
                                      display((root / name).string()));
        ++written;
    }
    if (archive_write_close(disk.a) < ARCHIVE_WARN)
        report.problems.push_back("cannot set directory times under " + root.string() + ": " +
                                  archive_message(disk.a));
    report.lines.push_back("files: " + std::to_string(written) + " restored, " + std::to_string(unchanged) +
                           " unchanged under " + root.string());
    if (replaced > 0)
        report.lines.push_back("files: " + std::to_string(replaced) + " replaced file(s) kept in " +
                               (root / replaced_dir).string());
    report.summary = {
        {"target", root.string()}, {"restored", written}, {"unchanged", unchanged}, {"replaced", replaced}};
    return report;
}

}  // namespace nightjar
