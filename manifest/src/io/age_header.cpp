// The age v1 header: base64 as the format wants it and a total, incremental parser.
#include <charconv>

#include "age_internal.hpp"

namespace nightjar::io::age_detail {

namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kColumns = 64;  // base64 characters per body line
constexpr std::size_t kLineBytes = 48;

int alphabet_index(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool is_vchar_string(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < 33 || c > 126) return false;
    return true;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        std::size_t sp = line.find(' ', start);
        if (sp == std::string_view::npos) {
            parts.push_back(line.substr(start));
            return parts;
        }
        parts.push_back(line.substr(start, sp - start));
        start = sp + 1;
    }
}

[[noreturn]] void header_fail(const std::string& what) {
    fail(AgeFailure::Header, "age: header: " + what + ": the file is damaged or not an age v1 file");
}

}  // namespace

std::string base64_encode(Bytes data) {
    std::string out;
    out.reserve((data.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        unsigned v = (std::to_integer<unsigned>(data[i]) << 16) |
                     (std::to_integer<unsigned>(data[i + 1]) << 8) | std::to_integer<unsigned>(data[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
    }
    std::size_t rest = data.size() - i;
    if (rest == 1) {
        unsigned v = std::to_integer<unsigned>(data[i]) << 16;
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
    } else if (rest == 2) {
        unsigned v =
            (std::to_integer<unsigned>(data[i]) << 16) | (std::to_integer<unsigned>(data[i + 1]) << 8);
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(kAlphabet[(v >> 6) & 63]);
    }
    return out;
}

std::optional<std::vector<std::byte>> base64_decode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::vector<std::byte> out;
    out.reserve(text.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        int v = alphabet_index(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::byte>((acc >> bits) & 0xff));
        }
    }
    // Canonical: the bits left over are zero.
    if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::size_t HeaderParser::feed(Bytes in) {
    std::size_t used = 0;
    while (used < in.size() && !done_) {
        char c = static_cast<char>(in[used++]);
        ++bytes_;
        if (c != '\n') {
            if (pending_.size() >= kMaxHeaderLine) header_fail("line longer than 4096 bytes");
            pending_.push_back(c);
            continue;
        }
        if (text_.size() + pending_.size() + 1 > kMaxHeaderBytes) header_fail("longer than 1 MiB");
        std::string line = std::move(pending_);
        pending_.clear();
        this->line(line);
        if (!done_) {
            text_ += line;
            text_ += '\n';
        }
    }
    return used;
}

void HeaderParser::fail_truncated() const {
    header_fail(bytes_ == 0 ? "empty input" : "ends before the MAC line");
}

void HeaderParser::line(std::string_view text) {
    if (!seen_version_) {
        if (text != kVersionLine) {
            if (text.starts_with("age-encryption.org/")) header_fail("unsupported version line");
            header_fail("missing version line");
        }
        seen_version_ = true;
        return;
    }
    if (in_body_) {
        // A body line is canonical base64 of at most 48 bytes; a shorter one ends the body.
        if (text.size() > kColumns) header_fail("stanza body line longer than 64 columns");
        auto decoded = base64_decode(text);
        if (!decoded) header_fail("stanza body is not canonical unpadded base64");
        auto& body = header_.stanzas.back().body;
        body.insert(body.end(), decoded->begin(), decoded->end());
        if (decoded->size() < kLineBytes) in_body_ = false;
        return;
    }
    if (text.starts_with("---")) {
        auto parts = split_spaces(text);
        if (parts[0] != "---" || parts.size() != 2) header_fail("malformed MAC line");
        auto mac = base64_decode(parts[1]);
        if (!mac || mac->size() != 32) header_fail("malformed MAC line");
        std::copy(mac->begin(), mac->end(), header_.mac.begin());
        header_.mac_input = text_ + "---";
        done_ = true;
        return;
    }
    if (text.starts_with("->")) {
        auto parts = split_spaces(text);
        if (parts[0] != "->" || parts.size() < 2) header_fail("malformed stanza line");
        for (std::size_t i = 1; i < parts.size(); ++i)
            if (!is_vchar_string(parts[i])) header_fail("stanza argument is empty or has invalid characters");
        if (header_.stanzas.size() >= kMaxStanzas) header_fail("more than 256 stanzas");
        Stanza s;
        s.type = std::string(parts[1]);
        for (std::size_t i = 2; i < parts.size(); ++i) s.args.emplace_back(parts[i]);
        header_.stanzas.push_back(std::move(s));
        in_body_ = true;
        return;
    }
    header_fail("unexpected line");
}

void check_x25519_stanza(const Stanza& s) {
    if (s.args.size() != 1) header_fail("X25519 stanza needs exactly one argument");
    auto share = base64_decode(s.args[0]);
    if (!share || share->size() != 32) header_fail("X25519 stanza share is not 32 bytes of canonical base64");
    if (s.body.size() != 32) header_fail("X25519 stanza body is not 32 bytes");
}

int check_scrypt_stanza(const Stanza& s, int max_work_factor) {
    if (s.args.size() != 2) header_fail("scrypt stanza needs exactly two arguments");
    auto salt = base64_decode(s.args[0]);
    if (!salt || salt->size() != 16) header_fail("scrypt stanza salt is not 16 bytes of canonical base64");
    const std::string& wf = s.args[1];
    // Decimal without sign or leading zeros.
    if (wf.empty() || wf.size() > 2 || wf[0] < '1' || wf[0] > '9')
        header_fail("scrypt stanza work factor is not a decimal number 1-" + std::to_string(max_work_factor));
    int value = 0;
    auto [ptr, ec] = std::from_chars(wf.data(), wf.data() + wf.size(), value);
    if (ec != std::errc{} || ptr != wf.data() + wf.size())
        header_fail("scrypt stanza work factor is not a decimal number 1-" + std::to_string(max_work_factor));
    if (value > max_work_factor)
        header_fail("scrypt work factor " + std::to_string(value) + " is above the limit " +
                    std::to_string(max_work_factor));
    if (s.body.size() != 32) header_fail("scrypt stanza body is not 32 bytes");
    return value;
}

std::string format_stanza(const Stanza& s) {
    std::string out = "-> " + s.type;
    for (const auto& a : s.args) out += " " + a;
    out += '\n';
    std::string b64 = base64_encode(s.body);
    std::size_t pos = 0;
    // Full 64-column lines, then a shorter (possibly empty) final line.
    while (b64.size() - pos >= kColumns) {
        out.append(b64, pos, kColumns);
        out += '\n';
        pos += kColumns;
    }
    out.append(b64, pos, std::string::npos);
    out += '\n';
    return out;
}

}  // namespace nightjar::io::age_detail
