// Create-only, owner-only files for secrets.
#include "nightjar/io/secret_file.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "nightjar/io/fd.hpp"

namespace nightjar::io {

namespace {

std::string temp_name(const std::filesystem::path& path) {
    std::random_device rd;
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".tmp-%08x%08x", rd(), rd());
    return path.string() + suffix;
}

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

}  // namespace

void create_secret_file(const std::filesystem::path& path, std::string_view content) {
    std::string tmp = temp_name(path);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw_errno(Kind::Storage, "cannot create a secret file beside", path.string());
    UniqueFd owned(fd);
    auto remove_tmp = [&] { ::unlink(tmp.c_str()); };
    try {
        // The umask may only remove bits; make sure no more than 0600 were given.
        if (::fchmod(fd, 0600) != 0) throw_errno(Kind::Storage, "cannot chmod 0600", tmp);
        write_all(fd, as_bytes(content), tmp);
        if (::fsync(fd) != 0) throw_errno(Kind::Storage, "cannot fsync", tmp);
    } catch (...) {
        remove_tmp();
        throw;
    }
    owned = UniqueFd();
    // link() fails with EEXIST instead of replacing: never overwrite a key that exists.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
        int saved = errno;
        remove_tmp();
        errno = saved;
        if (saved == EEXIST)
            throw Error(Kind::Storage, "secret file " + path.string() +
                                           ": already exists: it is never overwritten; move it away first");
        throw_errno(Kind::Storage, "cannot create secret file", path.string());
    }
    remove_tmp();
    auto dir = path.parent_path();
    fsync_dir(dir.empty() ? std::filesystem::path(".") : dir);
}

std::string read_secret_file(const std::filesystem::path& path, const SecretFileOptions& options) {
    const std::string name = options.what + " " + path.string();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw Error(options.kind, name + ": cannot open: " + std::strerror(errno));
    UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(options.kind, name + ": cannot stat: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error(options.kind, name + ": not a regular file");
    if (st.st_uid != ::geteuid())
        throw Error(options.kind, name + ": owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                                      std::to_string(::geteuid()) + " that runs nightjar: chown it");
    if ((st.st_mode & 077) != 0)
        throw Error(options.kind,
                    name + ": mode " + octal_mode(st.st_mode) + " lets others read a secret: chmod 0600 it");
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            OPENSSL_cleanse(buf, sizeof buf);
            wipe_string(text);
            throw Error(options.kind, name + ": read failed: " + std::strerror(errno));
        }
        if (n == 0) break;
        if (text.size() + static_cast<std::size_t>(n) > options.max_bytes) {
            OPENSSL_cleanse(buf, sizeof buf);
            wipe_string(text);
            throw Error(options.kind, name + ": larger than " + std::to_string(options.max_bytes) +
                                          " bytes: not a key file");
        }
        // Reserve up front so appending never reallocates and leaves copies of the secret behind.
        if (text.capacity() < options.max_bytes) text.reserve(options.max_bytes);
        text.append(buf, static_cast<std::size_t>(n));
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return text;
}

void wipe_string(std::string& s) noexcept {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

}  // namespace nightjar::io
