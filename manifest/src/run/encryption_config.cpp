#include "nightjar/run/encryption_config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>

#include "nightjar/io/fd.hpp"
#include "nightjar/io/secret_file.hpp"

namespace nightjar {

namespace {

constexpr std::size_t kMaxKeyFileBytes = 1u << 20;
constexpr std::size_t kMaxHostName = 253;

// Calls `line(number, text)` for each line that is neither blank nor a `#` comment, trimmed.
void for_each_key_line(std::string_view text,
                       const std::function<void(std::size_t, std::string_view)>& line) {
    std::size_t pos = 0, number = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view l = text.substr(pos, end - pos);
        pos = end + 1;
        ++number;
        std::size_t start = l.find_first_not_of(" \t\r");
        if (start == std::string_view::npos || l[start] == '#') continue;
        std::size_t stop = l.find_last_not_of(" \t\r");
        line(number, l.substr(start, stop - start + 1));
    }
}

std::string read_capped(const std::filesystem::path& path, const std::string& what) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        throw Error(Kind::Config, what + " " + path.string() + ": cannot open: " + std::strerror(errno));
    io::UniqueFd owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(Kind::Config, what + " " + path.string() + ": not a regular file");
    std::string text;
    char buf[16 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            throw Error(Kind::Config, what + " " + path.string() + ": read failed: " + std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > kMaxKeyFileBytes)
            throw Error(Kind::Config, what + " " + path.string() + ": larger than 1 MiB: not a key file");
    }
    return text;
}

bool looks_like_identity(std::string_view text) {
    return text.size() >= 16 &&
           std::equal(text.begin(), text.begin() + 16, "AGE-SECRET-KEY-1",
                      [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; });
}

// Never echoes the text: it may be a secret pasted in the wrong place.
std::string bad_recipient_reason(std::string_view text) {
    if (looks_like_identity(text))
        return "is a secret identity (AGE-SECRET-KEY-1…), not a recipient: never give it to the backup host; "
               "use its public key (age-keygen -y)";
    return "not a valid age1… X25519 recipient";
}

bool valid_host_name(std::string_view h) {
    if (h.empty() || h.size() > kMaxHostName) return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_';
    });
}

void add_unique(std::vector<io::AgeRecipient>& to, const io::AgeRecipient& r) {
    for (const auto& have : to)
        if (have.key == r.key) return;
    to.push_back(r);
}

std::filesystem::path absolute_path(const JsonFields& f, std::string_view key) {
    std::filesystem::path p = f.string(key);
    if (p.empty() || !p.is_absolute())
        f.fail(key, "expected an absolute path, got " + describe_json(p.string()));
    return p;
}

}  // namespace

std::vector<io::AgeIdentity> read_identity_file(const std::filesystem::path& path, const std::string& what) {
    std::string text = io::read_secret_file(path, {.max_bytes = kMaxKeyFileBytes, .what = what});
    std::vector<io::AgeIdentity> ids;
    try {
        for_each_key_line(text, [&](std::size_t number, std::string_view line) {
            try {
                ids.push_back(io::AgeIdentity::parse(line));
            } catch (const Error&) {
                throw Error(Kind::Config, "identity file " + path.string() + ":" + std::to_string(number) +
                                              ": not an AGE-SECRET-KEY-1… identity");
            }
        });
    } catch (...) {
        io::wipe_string(text);
        throw;
    }
    io::wipe_string(text);
    if (ids.empty())
        throw Error(Kind::Config, "identity file " + path.string() + ": no AGE-SECRET-KEY-1… identity in it");
    return ids;
}

std::vector<io::AgeRecipient> read_recipients_file(const std::filesystem::path& path,
                                                   const std::string& what) {
    std::string text = read_capped(path, what);
    std::vector<io::AgeRecipient> out;
    for_each_key_line(text, [&](std::size_t number, std::string_view line) {
        try {
            add_unique(out, io::AgeRecipient::parse(line));
        } catch (const Error&) {
            throw Error(Kind::Config, what + " " + path.string() + ":" + std::to_string(number) + ": " +
                                          bad_recipient_reason(line));
        }
    });
    if (out.empty()) throw Error(Kind::Config, what + " " + path.string() + ": no age1… recipient in it");
    return out;
}

std::vector<std::string> EncryptionConfig::recipient_fingerprints() const {
    std::vector<std::string> out;
    for (const auto& r : recipients) out.push_back(io::key_fingerprint(r.key));
    return out;
}

io::AgeIdentities EncryptionConfig::age_identities() const {
    if (identities.empty())
        throw Error(
            Kind::Config,
            "config: /encryption/identity_file: not set, so this host cannot decrypt backups: set it to "
            "the AGE-SECRET-KEY-1… file (mode 0600) on restore and drill hosts");
    io::AgeIdentities ids;
    ids.x25519 = identities;
    return ids;
}

EncryptionConfig parse_encryption_config(const nlohmann::json& j, const std::string& what,
                                         const std::string& pointer,
                                         const std::filesystem::path& config_source) {
    return parse_encryption_config(JsonFields(j, what, Kind::Config, pointer), config_source);
}

EncryptionConfig parse_encryption_config(const JsonFields& f, const std::filesystem::path& config_source) {
    f.only({"recipients", "recipients_file", "identity_file", "trusted_hosts", "signing_key_file"});
    EncryptionConfig c;

    if (f.has("recipients")) {
        if (!f.raw().at("recipients").is_array())
            f.fail("recipients",
                   "expected a list of age1… recipients, got " + describe_json(f.raw().at("recipients")));
        auto texts = f.strings_or("recipients", {});
        for (std::size_t i = 0; i < texts.size(); ++i) {
            try {
                add_unique(c.recipients, io::AgeRecipient::parse(texts[i]));
            } catch (const Error&) {
                f.fail("recipients/" + std::to_string(i), bad_recipient_reason(texts[i]));
            }
        }
    }
    if (f.has("recipients_file")) {
        c.recipients_file = absolute_path(f, "recipients_file");
        try {
            for (const auto& r : read_recipients_file(c.recipients_file, "recipients file"))
                add_unique(c.recipients, r);
        } catch (const Error& e) {
            f.fail("recipients_file", e.what());
        }
    }
    if (c.recipients.empty())
        f.fail(f.has("recipients_file") && !f.has("recipients") ? "recipients_file" : "recipients",
               "no recipient: with an encryption section, backups are encrypted to at least one age1… "
               "recipient (give recipients or recipients_file); nothing is ever written in clear");

    if (f.has("identity_file")) {
        c.identity_file = absolute_path(f, "identity_file");
        try {
            c.identities = read_identity_file(c.identity_file, "identity file");
        } catch (const Error& e) {
            f.fail("identity_file", e.what());
        }
    }

    if (auto hosts = f.optional_object("trusted_hosts")) {
        for (const auto& [host, value] : hosts->raw().items()) {
            if (!valid_host_name(host))
                f.fail("trusted_hosts", "host name " + describe_json(host) +
                                            " is not a host name (letters, digits, '.', '-', '_')");
            if (!value.is_string() && !value.is_array())
                hosts->fail(host, "expected an \"ed25519:…\" public key or a list of them, got " +
                                      describe_json(value));
            auto texts = hosts->string_or_strings(host, {});
            if (texts.empty()) hosts->fail(host, "expected at least one \"ed25519:…\" public key");
            auto& keys = c.trusted_hosts[host];
            for (std::size_t i = 0; i < texts.size(); ++i) {
                try {
                    auto k = io::SigningPublicKey::parse(texts[i]);
                    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
                } catch (const Error& e) {
                    hosts->fail(value.is_array() ? host + "/" + std::to_string(i) : host, e.what());
                }
            }
        }
    }

    if (f.has("signing_key_file")) {
        c.signing_key_file = absolute_path(f, "signing_key_file");
    } else if (!config_source.empty()) {
        c.signing_key_file = std::filesystem::absolute(config_source).parent_path() / kDefaultSigningKeyName;
    } else {
        f.fail("signing_key_file",
               "required when the config has no file of its own (the default is beside it)");
    }
    return c;
}

}  // namespace nightjar
