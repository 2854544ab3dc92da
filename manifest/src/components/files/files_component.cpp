#include "nightjar/components/files/files_component.hpp"

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
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <set>

#include "nightjar/components/files/safe_fs.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/fd.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar::files {
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
    // 'f' file, 'd' directory, 'l' symlink, 'h' hardlink to an earlier file of the archive, and the
    // specials ('p' FIFO, 'c' character device, 'b' block device, 's' socket), restored only with
    // --allow-special. The backup itself records only f, d and l.
    char type = 'f';
    std::uint32_t mode = 0;
    std::uint32_t uid = 0, gid = 0;
    std::string owner, group;
    std::int64_t mtime = 0;
    std::int64_t mtime_nsec = 0;
    std::uint64_t size = 0;
    std::string sha256;      // files only
    std::string target;      // symlinks: raw bytes; hardlinks: the absolute path of the earlier entry
    std::uint64_t rdev = 0;  // devices only
};

bool is_special(char t) {
    return t == 'p' || t == 'c' || t == 'b' || t == 's';
}

std::string type_name(char t) {
    switch (t) {
        case 'f':
            return "file";
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
            return "unknown";
    }
}

char type_of(const std::string& name) {
    for (char t : std::string("fdlhpcbs"))
        if (type_name(t) == name) return t;
    return '?';
}

char type_of(const struct stat& st) {
    return S_ISDIR(st.st_mode)    ? 'd'
           : S_ISLNK(st.st_mode)  ? 'l'
           : S_ISREG(st.st_mode)  ? 'f'
           : S_ISFIFO(st.st_mode) ? 'p'
           : S_ISCHR(st.st_mode)  ? 'c'
           : S_ISBLK(st.st_mode)  ? 'b'
           : S_ISSOCK(st.st_mode) ? 's'
                                  : '?';
}

std::string octal(std::uint32_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
    return buf;
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
           {"mode_octal", octal(e.mode)},
           {"uid", e.uid},
           {"gid", e.gid},
           {"owner", e.owner},
           {"group", e.group},
           {"mtime", e.mtime},
           {"mtime_nsec", e.mtime_nsec},
           {"size", e.size}};
    put_bytes(j, "path", e.path);
    if (e.type == 'f') j["sha256"] = e.sha256;
    if (e.type == 'l' || e.type == 'h') put_bytes(j, "target", e.target);
    if (e.type == 'c' || e.type == 'b') j["rdev"] = e.rdev;
    return j;
}

// "mode" (a number) and "mode_octal" ("0644"): either is enough (older manifests have only the number);
// when both are there they must agree.
std::uint32_t mode_from_json(const JsonFields& f) {
    std::optional<std::uint32_t> octal_mode;
    if (f.has("mode_octal")) {
        std::string s = f.string("mode_octal");
        if (s.empty() || s.size() > 5 || s.find_first_not_of("01234567") != std::string::npos)
            f.fail("mode_octal", "expected an octal mode like \"0644\", got \"" + s + "\"");
        unsigned long v = std::stoul(s, nullptr, 8);
        if (v > 07777) f.fail("mode_octal", "expected an octal mode up to 07777, got \"" + s + "\"");
        octal_mode = static_cast<std::uint32_t>(v);
    }
    if (octal_mode && !f.has("mode")) return *octal_mode;
    auto mode = static_cast<std::uint32_t>(f.integer("mode", 0, 07777));
    if (octal_mode && *octal_mode != mode)
        f.fail("mode_octal", "\"" + octal(*octal_mode) + "\" differs from mode " + octal(mode));
    return mode;
}

FileEntry entry_from_json(const JsonFields& f) {
    FileEntry e;
    e.path = get_bytes(f, "path");
    std::string t =
        f.choice("type", {"file", "dir", "symlink", "hardlink", "fifo", "char", "block", "socket"}, "file");
    e.type = type_of(t);
    e.mode = mode_from_json(f);
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
    if (e.type == 'l' || e.type == 'h') e.target = get_bytes(f, "target");
    if (e.type == 'c' || e.type == 'b') e.rdev = f.uint64("rdev");
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

// The entry's path as the manifest names it: libarchive reports directories with a trailing slash.
std::string entry_name(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    std::string name = raw ? raw : "";
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    return name;
}

// The type of a tar entry in the manifest's letters ('?' for anything else).
char tar_type(archive_entry* entry) {
    if (archive_entry_hardlink(entry)) return 'h';
    switch (archive_entry_filetype(entry)) {
        case AE_IFREG:
            return 'f';
        case AE_IFDIR:
            return 'd';
        case AE_IFLNK:
            return 'l';
        case AE_IFIFO:
            return 'p';
        case AE_IFCHR:
            return 'c';
        case AE_IFBLK:
            return 'b';
        case AE_IFSOCK:
            return 's';
        default:
            return '?';
    }
}

// What differs between a tar header and the manifest's entry for it ("" when they agree): type, mode,
// size, link target, device number.
std::string header_mismatch(const FileEntry& e, archive_entry* entry) {
    const std::string p = display(e.path);
    char t = tar_type(entry);
    if (t != e.type)
        return "type differs from the manifest: " + p + " (manifest: " + type_name(e.type) +
               ", archive: " + type_name(t) + ")";
    auto perm = static_cast<std::uint32_t>(archive_entry_perm(entry)) & 07777;
    if (perm != e.mode)
        return "mode differs from the manifest: " + p + " (manifest: " + octal(e.mode) +
               ", archive: " + octal(perm) + ")";
    if (e.type != 'h') {
        la_int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
        if (size < 0 || static_cast<std::uint64_t>(size) != e.size)
            return "size differs from the manifest: " + p + " (manifest: " + std::to_string(e.size) +
                   ", archive: " + std::to_string(size) + ")";
    }
    if (e.type == 'l') {
        const char* link = archive_entry_symlink(entry);
        if ((link ? link : "") != e.target) return "link target differs from the manifest: " + p;
    }
    if (e.type == 'h') {
        std::string link = archive_entry_hardlink(entry);
        while (link.size() > 1 && link.back() == '/') link.pop_back();
        if (link != archive_name(e.target)) return "hardlink target differs from the manifest: " + p;
    }
    if ((e.type == 'c' || e.type == 'b') && static_cast<std::uint64_t>(archive_entry_rdev(entry)) != e.rdev)
        return "device number differs from the manifest: " + p;
    return "";
}

std::string special_refusal(const FileEntry& e) {
    return "special file (" + type_name(e.type) + ") in the backup: " + display(e.path) +
           ": pass --allow-special to restore it";
}

// The manifest's entries, by archive name, with what verify and the restore walk both check per tar entry:
// every entry named once, in the manifest's order, matching its header; hardlinks only to an earlier
// file of the same archive.
class ArchiveMatcher {
public:
    ArchiveMatcher(std::vector<FileEntry> entries, bool allow_special) : entries_(std::move(entries)) {
        allow_special_ = allow_special;
        seen_.assign(entries_.size(), false);
        for (std::size_t i = 0; i < entries_.size(); ++i)
            if (!index_.emplace(archive_name(entries_[i].path), i).second)
                problems_.push_back("listed twice in the manifest: " + display(entries_[i].path));
    }

    // The manifest entry for this tar header, or nullptr (with the reason in `problem`).
    const FileEntry* match(archive_entry* entry, std::string& problem) {
        std::string name = entry_name(entry);
        auto it = index_.find(name);
        if (it == index_.end()) {
            problem = "entry not in the manifest: " + display(name);
            return nullptr;
        }
        std::size_t i = it->second;
        const FileEntry& e = entries_[i];
        if (seen_[i]) {
            problem = "appears twice in the archive: " + display(e.path);
            return nullptr;
        }
        seen_[i] = true;
        if (any_ && i < last_) {
            problem = "archive entry out of the manifest's order: " + display(e.path);
            return nullptr;
        }
        any_ = true;
        last_ = i;
        problem = header_mismatch(e, entry);
        if (problem.empty() && is_special(e.type) && !allow_special_) problem = special_refusal(e);
        if (problem.empty() && e.type == 'h' && !files_.count(archive_name(e.target)))
            problem = "hardlink target is not an earlier file of the archive: " + display(e.path) + " -> " +
                      display(e.target);
        if (e.type == 'f') files_.insert(name);
        return problem.empty() ? &e : nullptr;
    }

    // Manifest entries the archive never had.
    std::vector<std::string> missing() const {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < entries_.size(); ++i)
            if (!seen_[i]) out.push_back("missing from the archive: " + display(entries_[i].path));
        return out;
    }
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<FileEntry> entries_;
    std::map<std::string, std::size_t> index_;
    std::vector<bool> seen_;
    std::set<std::string> files_;  // archive names of the regular files seen so far
    std::vector<std::string> problems_;
    std::size_t last_ = 0;
    bool any_ = false;
    bool allow_special_ = false;
};

enum class Change { New, Changed, Unchanged };

// Compares an entry with what the target has at `name` in the directory `dir` (opened through the safe
// layer). `st` is that node's lstat, nullopt when absent. Nothing is followed and nothing blocks: a file is
// opened O_NOFOLLOW|O_NONBLOCK and must be the regular file of the recorded size.
Change compare_at(int dir, const std::string& name, const std::optional<struct stat>& st,
                  const FileEntry& e) {
    if (!st) return Change::New;
    char t = type_of(*st);
    if (e.type == 'h') return Change::Changed;  // relinked every time: cheap, and never through the target
    if (t != e.type) return Change::Changed;
    if ((st->st_mode & 07777) != e.mode && e.type != 'l') return Change::Changed;
    if (e.type == 'd') return Change::Unchanged;  // a directory's contents are judged entry by entry
    if (is_special(e.type))
        return (e.type != 'c' && e.type != 'b') || st->st_rdev == e.rdev ? Change::Unchanged
                                                                         : Change::Changed;
    if (st->st_mtim.tv_sec != e.mtime) return Change::Changed;
    if (e.type == 'l') {
        std::string buf(static_cast<std::size_t>(st->st_size) + 2, '\0');
        ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size());
        return n >= 0 && buf.substr(0, static_cast<std::size_t>(n)) == e.target ? Change::Unchanged
                                                                                : Change::Changed;
    }
    if (static_cast<std::uint64_t>(st->st_size) != e.size) return Change::Changed;
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return Change::Changed;
    io::UniqueFd owned(fd);
    struct stat now {};
    if (::fstat(fd, &now) != 0 || !S_ISREG(now.st_mode) || static_cast<std::uint64_t>(now.st_size) != e.size)
        return Change::Changed;
    io::FdReader reader(std::move(owned), name);
    io::Sha256 sha;
    std::vector<std::byte> buf(256 * 1024);
    while (std::size_t n = reader.read(buf)) sha.update(io::Bytes(buf.data(), n));
    return sha.hex() == e.sha256 ? Change::Unchanged : Change::Changed;
}

std::string blocked_reason(files::Blocked b) {
    switch (b) {
        case files::Blocked::Symlink:
            return "is a symlink in the target (never followed)";
        case files::Blocked::NotDirectory:
            return "is not a directory in the target";
        default:
            return "cannot be opened in the target";
    }
}

std::string replaced_dir_name(const RestoreContext& context) {
    return std::string(kReplacedPrefix) + (context.backup_id.empty() ? "restore" : context.backup_id);
}

}  // namespace

FilesComponent::FilesComponent(std::optional<FilesConfig> config, FilesRestoreOptions restore_options)
    : config_(std::move(config)), restore_options_(restore_options) {}

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
    ArchiveMatcher matcher(entries_of(artifact), restore_options_.allow_special);
    std::vector<std::string> wrong = matcher.problems();
    std::string what = "artifact " + artifact.path;
    ArchiveHandle tar{archive_read_new(), true};
    ArchiveSource src{content, std::vector<std::byte>(io::kChunkSize), nullptr};
    open_tar(tar.a, src, what);
    while (archive_entry* entry = next_entry(tar.a, src, what)) {
        std::string problem;
        const FileEntry* e = matcher.match(entry, problem);
        std::string digest = read_entry_data(tar.a, src, what, [](io::Bytes) {});
        if (!e) {
            wrong.push_back(problem);
            continue;
        }
        if (e->type == 'f' && digest != e->sha256)
            wrong.push_back("content differs from the manifest: " + display(e->path));
    }
    for (auto& m : matcher.missing()) wrong.push_back(std::move(m));
    if (wrong.empty()) return {};
    std::string detail = wrong.front();
    if (wrong.size() > 1) detail += " (and " + std::to_string(wrong.size() - 1) + " more)";
    return {VerifyStatus::FormatInvalid, detail};
}

RestorePlan FilesComponent::plan_restore(const Artifact& artifact, const RestoreContext& context) const {
    RestorePlan plan;
    const bool allow_special = restore_options_.allow_special;
    const fs::path root_path = context.target_root.value_or("/");
    auto refuse = [&plan](std::string r) { plan.refusals.push_back(std::move(r)); };
    std::optional<files::SafeRoot> root;
    try {
        root = files::SafeRoot::open(root_path);
    } catch (const Error& e) {
        refuse(e.what());
        return plan;
    }
    const std::string replaced = replaced_dir_name(context);
    const std::vector<FileEntry> entries = entries_of(artifact);
    std::map<std::string, char> declared;  // archive name -> type (the first of a name)
    for (const auto& e : entries) declared.emplace(archive_name(e.path), e.type);
    std::set<std::string> named;      // names planned so far
    std::set<std::string> recreated;  // directories that replace a non-directory: all below them is new
    int counts[3] = {0, 0, 0};
    for (const auto& e : entries) {
        const std::string name = archive_name(e.path);
        auto parts = files::split_relative(name);
        if (!parts || (*parts)[0].rfind(kReplacedPrefix, 0) == 0) {
            refuse("unsafe path in backup (absolute or with ..): " + display(e.path));
            continue;
        }
        if (!named.insert(name).second) {
            refuse("listed twice in the manifest: " + display(e.path));
            continue;
        }
        std::string beneath;
        for (std::size_t k = 1; k < parts->size() && beneath.empty(); ++k)
            if (auto it = declared.find(files::join(*parts, k)); it != declared.end() && it->second != 'd')
                beneath = type_name(it->second) + " " + display("/" + it->first);
        if (!beneath.empty()) {
            refuse("entry beneath a " + beneath + " of the backup (never followed): " + display(e.path));
            continue;
        }
        if (is_special(e.type) && !allow_special) {
            refuse(special_refusal(e));
            continue;
        }
        if (e.type == 'h') {
            std::string to = archive_name(e.target);
            auto it = declared.find(to);
            if (to == name || !named.count(to) || it == declared.end() || it->second != 'f') {
                refuse("hardlink target is not an earlier file of the archive: " + display(e.path) + " -> " +
                       display(e.target));
                continue;
            }
        }
        Change c = Change::New;
        bool below_recreated = false;
        for (std::size_t k = 1; k < parts->size() && !below_recreated; ++k)
            below_recreated = recreated.count(files::join(*parts, k)) > 0;
        if (root && !below_recreated) {
            files::DirLookup dir = root->lookup_dir(*parts, parts->size() - 1);
            if (dir.blocked != files::Blocked::None && dir.blocked != files::Blocked::Missing) {
                refuse("a parent " + blocked_reason(dir.blocked) + ": " + display(root->shown(dir.at)) +
                       " (for " + display(e.path) + ")");
                continue;
            }
            if (dir.blocked == files::Blocked::None) {
                auto st = files::stat_at(dir.fd.get(), parts->back(), root->shown(name));
                c = compare_at(dir.fd.get(), parts->back(), st, e);
                if (st && c == Change::Changed && e.type == 'd' && S_ISLNK(st->st_mode)) {
                    refuse("the backup has a directory where the target has a symlink (never followed): " +
                           display(root->shown(name)));
                    continue;
                }
                if (st && c == Change::Changed && !(S_ISDIR(st->st_mode) && e.type == 'd')) {
                    if (e.type == 'd') recreated.insert(name);
                    // The replaced node goes aside through the same layer: its folder must not be a link.
                    std::vector<std::string> aside{replaced};
                    aside.insert(aside.end(), parts->begin(), parts->end() - 1);
                    files::DirLookup a = root->lookup_dir(aside, aside.size());
                    if (a.blocked != files::Blocked::None && a.blocked != files::Blocked::Missing) {
                        refuse("cannot keep the replaced file aside: " + display(root->shown(a.at)) + " " +
                               blocked_reason(a.blocked) + " (for " + display(e.path) + ")");
                        continue;
                    }
                }
            }
        }
        ++counts[static_cast<int>(c)];
        if (c != Change::Unchanged)
            plan.lines.push_back(std::string(c == Change::New ? "new     " : "changed ") +
                                 display((root_path / name).string()));
    }
    plan.summary = {
        {"target", root_path.string()}, {"new", counts[0]}, {"changed", counts[1]}, {"unchanged", counts[2]}};
    plan.lines.push_back("files: " + std::to_string(counts[0]) + " new, " + std::to_string(counts[1]) +
                         " changed, " + std::to_string(counts[2]) + " unchanged under " + root_path.string());
    return plan;
}

namespace {

uid_t uid_for(const FileEntry& e) {
    if (!e.owner.empty()) {
        struct passwd pw {
        }, *res = nullptr;
        char buf[4096];
        if (getpwnam_r(e.owner.c_str(), &pw, buf, sizeof buf, &res) == 0 && res) return res->pw_uid;
    }
    return e.uid;
}

gid_t gid_for(const FileEntry& e) {
    if (!e.group.empty()) {
        struct group gr {
        }, *res = nullptr;
        char buf[4096];
        if (getgrnam_r(e.group.c_str(), &gr, buf, sizeof buf, &res) == 0 && res) return res->gr_gid;
    }
    return e.gid;
}

struct timespec mtime_of(const FileEntry& e) {
    struct timespec t {};
    t.tv_sec = static_cast<time_t>(e.mtime);
    t.tv_nsec = static_cast<long>(e.mtime_nsec);
    return t;
}

// Owner (as root only), mode and mtime of an open file or directory.
void set_meta_fd(int fd, const FileEntry& e, bool as_root, const std::string& shown) {
    if (as_root && ::fchown(fd, uid_for(e), gid_for(e)) != 0)
        throw_errno(Kind::RestoreFailed, "files: cannot set the owner of", shown);
    if (::fchmod(fd, e.mode) != 0) throw_errno(Kind::RestoreFailed, "files: cannot set the mode of", shown);
    struct timespec times[2] = {{0, UTIME_OMIT}, mtime_of(e)};
    if (::futimens(fd, times) != 0) throw_errno(Kind::RestoreFailed, "files: cannot set the mtime of", shown);
}

// The same for a node that cannot be opened (a symlink, a special file), by name, never following it.
void set_meta_at(int dir, const std::string& name, const FileEntry& e, bool as_root,
                 const std::string& shown) {
    if (as_root && ::fchownat(dir, name.c_str(), uid_for(e), gid_for(e), AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno(Kind::RestoreFailed, "files: cannot set the owner of", shown);
    if (e.type != 'l' && ::fchmodat(dir, name.c_str(), e.mode, 0) != 0)
        throw_errno(Kind::RestoreFailed, "files: cannot set the mode of", shown);
    struct timespec times[2] = {{0, UTIME_OMIT}, mtime_of(e)};
    if (::utimensat(dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno(Kind::RestoreFailed, "files: cannot set the mtime of", shown);
}

// Moves `name` (in `dir`, the parent of the entry `parts`) into <root>/<replaced>/<parent path>/, never
// over something already kept there (a second copy gets a ".~N" suffix).
void move_aside(const files::SafeRoot& root, const std::string& replaced,
                const std::vector<std::string>& parts, int dir, const std::string& shown) {
    std::vector<std::string> aside{replaced};
    aside.insert(aside.end(), parts.begin(), parts.end() - 1);
    files::DirLookup a = root.lookup_dir(aside, aside.size(), true, 0700);
    if (a.blocked != files::Blocked::None)
        throw Error(Kind::RestoreFailed, "files: cannot move aside the file to be replaced: " + shown + ": " +
                                             display(root.shown(a.at)) + " " + blocked_reason(a.blocked));
    const std::string& name = parts.back();
    for (int n = 0; n < 1000; ++n) {
        std::string kept = n == 0 ? name : name + ".~" + std::to_string(n);
        if (::renameat2(dir, name.c_str(), a.fd.get(), kept.c_str(), RENAME_NOREPLACE) == 0) return;
        if (errno == EINVAL && ::renameat(dir, name.c_str(), a.fd.get(), kept.c_str()) == 0) return;
        if (errno != EEXIST && errno != ENOTEMPTY) break;
    }
    throw_errno(Kind::RestoreFailed, "files: cannot move aside the file to be replaced", shown);
}

}  // namespace

RestoreReport FilesComponent::restore(const Artifact& artifact, io::Reader& content,
                                      const RestoreContext& context) {
    RestorePlan plan = plan_restore(artifact, context);
    if (!plan.refusals.empty()) {
        std::string msg = "files: restore refused, nothing was written: " + plan.refusals.front();
        if (plan.refusals.size() > 1) msg += " (and " + std::to_string(plan.refusals.size() - 1) + " more)";
        throw Error(Kind::RestoreFailed, msg);
    }
    const bool allow_special = restore_options_.allow_special;
    const bool as_root = ::geteuid() == 0;
    const files::SafeRoot root = files::SafeRoot::create(context.target_root.value_or("/"));
    const std::string replaced = replaced_dir_name(context);
    ArchiveMatcher matcher(entries_of(artifact), allow_special);

    RestoreReport report;
    int written = 0, unchanged = 0, replaced_count = 0;
    std::vector<std::pair<std::vector<std::string>, FileEntry>> dirs;  // new or changed: metadata at the end
    std::string what = "artifact " + artifact.path;
    ArchiveHandle tar{archive_read_new(), true};
    ArchiveSource src{content, std::vector<std::byte>(io::kChunkSize), nullptr};
    open_tar(tar.a, src, what);
    unsigned tmp_counter = 0;
    auto skip_data = [&] { read_entry_data(tar.a, src, what, [](io::Bytes) {}); };

    while (archive_entry* entry = next_entry(tar.a, src, what)) {
        std::string problem;
        const FileEntry* matched = matcher.match(entry, problem);
        if (!matched)
            throw Error(Kind::Verification,
                        "files: " + what + ": " + problem + " (the archive changed after it was verified)");
        const FileEntry& e = *matched;
        const std::string name = archive_name(e.path);
        const std::vector<std::string> parts = *files::split_relative(name);  // proven by the plan
        const std::string shown = display(root.shown(name));
        files::DirLookup dir = root.lookup_dir(parts, parts.size() - 1, true);
        if (dir.blocked != files::Blocked::None)
            throw Error(Kind::RestoreFailed, "files: cannot restore " + shown + ": " +
                                                 display(root.shown(dir.at)) + " " +
                                                 blocked_reason(dir.blocked));
        const int dfd = dir.fd.get();
        const std::string& base = parts.back();
        auto st = files::stat_at(dfd, base, shown);
        Change change = compare_at(dfd, base, st, e);
        if (change == Change::Unchanged) {
            ++unchanged;
            skip_data();
            continue;
        }
        const std::string tmp =
            ".nightjar-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++tmp_counter);
        bool replaces = st && !(S_ISDIR(st->st_mode) && e.type == 'd');
        // Puts the node made at `tmp` in place, the old one kept aside first.
        auto place = [&] {
            if (replaces) {
                move_aside(root, replaced, parts, dfd, shown);
                ++replaced_count;
            }
            if (::renameat(dfd, tmp.c_str(), dfd, base.c_str()) != 0) {
                int err = errno;
                ::unlinkat(dfd, tmp.c_str(), 0);
                errno = err;
                throw_errno(Kind::RestoreFailed, "files: cannot put in place", shown);
            }
        };
        auto made = [&](int rc, const char* how) {
            if (rc != 0) throw_errno(Kind::RestoreFailed, std::string("files: cannot ") + how, shown);
        };
        if (e.type == 'f') {
            int fd = ::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            made(fd < 0 ? -1 : 0, "create");
            io::UniqueFd out(fd);
            try {
                std::string digest = read_entry_data(
                    tar.a, src, what, [&](io::Bytes piece) { io::write_all(fd, piece, shown); });
                if (digest != e.sha256)
                    throw Error(Kind::Verification,
                                "files: restored content differs from the manifest: " + shown +
                                    " (the file in the target was left as it was)");
                set_meta_fd(fd, e, as_root, shown);
            } catch (...) {
                ::unlinkat(dfd, tmp.c_str(), 0);
                throw;
            }
            place();
        } else if (e.type == 'd') {
            skip_data();
            if (replaces) {
                move_aside(root, replaced, parts, dfd, shown);
                ++replaced_count;
            }
            if (!st || replaces) made(::mkdirat(dfd, base.c_str(), 0700), "create the directory");
            dirs.emplace_back(parts, e);
        } else if (e.type == 'l') {
            skip_data();
            made(::symlinkat(e.target.c_str(), dfd, tmp.c_str()), "create the symlink");
            set_meta_at(dfd, tmp, e, as_root, shown);
            place();
        } else if (e.type == 'h') {
            skip_data();
            const std::vector<std::string> to = *files::split_relative(archive_name(e.target));
            files::DirLookup tdir = root.lookup_dir(to, to.size() - 1);
            if (tdir.blocked != files::Blocked::None)
                throw Error(Kind::RestoreFailed, "files: cannot link " + shown + ": " +
                                                     display(root.shown(tdir.at)) + " " +
                                                     blocked_reason(tdir.blocked));
            made(::linkat(tdir.fd.get(), to.back().c_str(), dfd, tmp.c_str(), 0), "create the hardlink");
            place();
        } else {
            skip_data();
            mode_t kind = e.type == 'p'   ? S_IFIFO
                          : e.type == 'c' ? S_IFCHR
                          : e.type == 'b' ? S_IFBLK
                                          : S_IFSOCK;
            made(::mknodat(dfd, tmp.c_str(), kind | 0600, static_cast<dev_t>(e.rdev)),
                 "create the special file");
            set_meta_at(dfd, tmp, e, as_root, shown);
            place();
        }
        ++written;
    }
    for (auto& m : matcher.missing()) report.problems.push_back(m);
    // Directories last, deepest first, so that writing their entries does not disturb their times.
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        const std::string shown = display(root.shown(files::join(it->first, it->first.size())));
        files::DirLookup d = root.lookup_dir(it->first, it->first.size());
        try {
            if (d.blocked != files::Blocked::None)
                throw Error(Kind::RestoreFailed, "files: cannot reopen the directory " + shown);
            set_meta_fd(d.fd.get(), it->second, as_root, shown);
        } catch (const Error& err) {
            report.problems.push_back(err.what());
        }
    }
    report.lines.push_back("files: " + std::to_string(written) + " restored, " + std::to_string(unchanged) +
                           " unchanged under " + root.path().string());
    if (replaced_count > 0)
        report.lines.push_back("files: " + std::to_string(replaced_count) + " replaced file(s) kept in " +
                               root.shown(replaced));
    report.summary = {{"target", root.path().string()},
                      {"restored", written},
                      {"unchanged", unchanged},
                      {"replaced", replaced_count}};
    return report;
}

}  // namespace nightjar::files
