#include "nightjar/run/repository_config.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/repo/s3/s3_storage.hpp"
#include "nightjar/run/config.hpp"

namespace nightjar {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kS3Scheme = "s3://";
// Part buffers above this are more than a backup should hold in memory (the budget is 100 MB in all).
constexpr std::uint64_t kPartMemoryWarnBytes = 64u << 20;

std::string env_or(const char* name, std::string fallback = "") {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

S3RepositoryConfig parse_s3_fields(const JsonFields& f, bool with_type) {
    if (with_type)
        f.only({"type", "endpoint", "region", "bucket", "prefix", "access_key_id", "secret_access_key_file",
                "path_style", "part_size_mib", "parallel_parts", "bandwidth_limit", "object_lock"});
    S3RepositoryConfig s;
    s.endpoint = f.string_or("endpoint", "");
    if (!s.endpoint.empty() && s.endpoint.rfind("http://", 0) != 0 && s.endpoint.rfind("https://", 0) != 0)
        f.fail("endpoint", "expected an http:// or https:// URL, got " + describe_json(s.endpoint));
    while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
    s.region = f.string_or("region", s.region);
    s.bucket = f.string_or("bucket", "");
    if (!f.has("bucket")) f.fail("bucket", "required field is missing (type s3)");
    if (s.bucket.size() < 3 || s.bucket.size() > 63 ||
        s.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
        f.fail("bucket", "expected an S3 bucket name (3-63 lowercase letters, digits, '.' or '-'), got " +
                             describe_json(s.bucket));
    s.prefix = f.string_or("prefix", "");
    if (!s.prefix.empty() && (s.prefix.front() == '/' || s.prefix.find("..") != std::string::npos))
        f.fail("prefix", "expected a key prefix such as \"host1/\" (no leading '/', no \"..\"), got " +
                             describe_json(s.prefix));
    s.access_key_id = f.string_or("access_key_id", "");
    s.secret_access_key_file = f.string_or("secret_access_key_file", "");
    if (s.access_key_id.empty() != s.secret_access_key_file.empty())
        f.fail(s.access_key_id.empty() ? "access_key_id" : "secret_access_key_file",
               "access_key_id and secret_access_key_file go together (or neither: the AWS_* environment)");
    if (!s.secret_access_key_file.empty() && !s.secret_access_key_file.is_absolute())
        f.fail("secret_access_key_file",
               "expected an absolute path, got " + describe_json(s.secret_access_key_file.string()));
    if (f.has("path_style")) s.path_style = f.boolean_or("path_style", true);
    s.part_size_mib = static_cast<int>(f.integer_or("part_size_mib", 5, 5120, s.part_size_mib));
    s.parallel_parts = static_cast<int>(f.integer_or("parallel_parts", 1, 64, s.parallel_parts));
    if (f.has("bandwidth_limit")) {
        const auto& raw = f.raw().at("bandwidth_limit");
        std::optional<std::uint64_t> bw;
        if (raw.is_string()) bw = parse_bandwidth(raw.get<std::string>());
        if (raw.is_number_unsigned()) bw = raw.get<std::uint64_t>();
        if (!bw)
            f.fail("bandwidth_limit",
                   "expected bytes per second such as \"50MiB/s\", got " + describe_json(raw));
        s.bandwidth_limit = *bw;
    }
    if (auto lock = f.optional_object("object_lock")) {
        lock->only({"mode", "days"});
        s.object_lock.mode = lock->choice("mode", {"compliance", "governance"}, s.object_lock.mode);
        s.object_lock.days = static_cast<int>(lock->integer("days", 1, 36500));
    }
    return s;
}

}  // namespace

std::optional<std::uint64_t> parse_bandwidth(const std::string& text) {
    std::string t = text;
    if (t.size() > 2 && t.compare(t.size() - 2, 2, "/s") == 0) t.resize(t.size() - 2);
    std::size_t digits = 0;
    while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
    if (digits == 0 || digits > 15) return std::nullopt;
    const std::uint64_t n = std::stoull(t.substr(0, digits));
    const std::string unit = t.substr(digits);
    static const std::pair<const char*, std::uint64_t> units[] = {
        {"", 1},           {"B", 1},          {"KB", 1000},       {"MB", 1000000}, {"GB", 1000000000},
        {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1ull << 30}};
    for (const auto& [name, factor] : units)
        if (unit == name) return n * factor;
    return std::nullopt;
}

RepositoryConfig parse_repository_config(const JsonFields& f) {
    RepositoryConfig c;
    c.type = f.choice("type", {"local", "s3"}, c.type);
    if (c.type == "s3") {
        f.only({"type", "mode", "copies", "lease_stale_minutes", "endpoint", "region", "bucket", "prefix",
                "access_key_id", "secret_access_key_file", "path_style", "part_size_mib", "parallel_parts",
                "bandwidth_limit", "object_lock"});
        c.s3 = parse_s3_fields(f, false);
        c.lease_stale_minutes =
            static_cast<int>(f.integer_or("lease_stale_minutes", 1, 100000, c.lease_stale_minutes));
    } else {
        f.only({"type", "mode", "copies"});
    }
    c.mode = f.choice("mode", {"private", "group"}, c.mode);
    if (f.has("copies")) {
        const auto& list = f.array("copies");
        for (std::size_t i = 0; i < list.size(); ++i) {
            JsonFields e = f.element("copies", i);
            if (e.choice("type", {"s3"}, "") != "s3") e.fail("type", "required: \"s3\" (a copy goes to S3)");
            c.copies.push_back(parse_s3_fields(e, true));
        }
    }
    return c;
}

bool is_s3_location(const fs::path& location) {
    return location.native().rfind(kS3Scheme, 0) == 0;
}

fs::path absolute_location(const fs::path& location) {
    if (location.empty() || is_s3_location(location)) return location;
    return fs::absolute(location);
}

std::string local_host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

fs::path s3_location(const S3RepositoryConfig& s3) {
    std::string prefix = s3.prefix.empty() ? local_host_name() : s3.prefix;
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return std::string(kS3Scheme) + s3.bucket + (prefix.empty() ? "" : "/" + prefix);
}

namespace {

std::unique_ptr<Storage> open_s3(const S3RepositoryConfig& s3, const std::string& bucket,
                                 const std::string& prefix) {
    const std::string endpoint = !s3.endpoint.empty() ? s3.endpoint : env_or("NIGHTJAR_S3_ENDPOINT");
    const std::string where = "s3://" + bucket + "/" + prefix;
    if (endpoint.empty())
        throw Error(Kind::Config, "repository " + where +
                                      ": no S3 endpoint: set /repository/endpoint in the config or "
                                      "NIGHTJAR_S3_ENDPOINT (e.g. https://s3.eu-west-1.amazonaws.com)");
    if (bucket.size() < 3)
        throw Error(Kind::Config, "repository " + where +
                                      ": expected s3://BUCKET/PREFIX with a bucket name "
                                      "of at least 3 characters");
    s3::Credentials creds = s3.access_key_id.empty()
                                ? s3::Credentials::from_env()
                                : s3::Credentials::from_file(s3.access_key_id, s3.secret_access_key_file);
    const bool aws = endpoint.find(".amazonaws.com") != std::string::npos;
    s3::ClientOptions client{.endpoint = endpoint,
                             .region = !s3.region.empty()
                                           ? s3.region
                                           : env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", "us-east-1")),
                             .path_style = s3.path_style.value_or(!aws),
                             .ca_bundle = env_or("AWS_CA_BUNDLE"),
                             .bandwidth_limit = s3.bandwidth_limit};
    const std::size_t part = static_cast<std::size_t>(s3.part_size_mib) << 20;
    const std::uint64_t held = static_cast<std::uint64_t>(s3.parallel_parts) * part;
    if (held > kPartMemoryWarnBytes)
        log::warn("repository ", where, ": part_size_mib ", s3.part_size_mib, " x parallel_parts ",
                  s3.parallel_parts, " holds ", log::human_bytes(held),
                  " of parts in flight per upload, over the ", log::human_bytes(kPartMemoryWarnBytes),
                  " a run should use: lower parallel_parts or part_size_mib");
    s3::S3StorageOptions options{
        .bucket = bucket,
        .prefix = prefix,
        .multipart = {.part_size = part, .parallel_parts = s3.parallel_parts},
        .lock = {
            .mode = s3.object_lock.mode == "governance" ? s3::LockMode::Governance : s3::LockMode::Compliance,
            .days = s3.object_lock.days}};
    auto c = std::make_shared<const s3::Client>(std::move(client), std::move(creds));
    return std::make_unique<s3::S3Storage>(std::move(c), std::move(options));
}

}  // namespace

std::unique_ptr<Storage> open_s3_repository(const S3RepositoryConfig& s3) {
    const std::string loc = s3_location(s3).string().substr(kS3Scheme.size());
    const std::size_t slash = loc.find('/');
    return open_s3(s3, loc.substr(0, slash), slash == std::string::npos ? "" : loc.substr(slash + 1));
}

std::unique_ptr<Storage> open_repository(const fs::path& location, const RepositoryConfig& config) {
    if (!is_s3_location(location))
        return std::make_unique<PosixStorage>(location, storage_modes(config.mode));
    const std::string rest = location.native().substr(kS3Scheme.size());
    const std::size_t slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (prefix.find("..") != std::string::npos)
        throw Error(Kind::Config,
                    "repository " + location.string() + ": a key prefix may not contain \"..\"");
    return open_s3(config.s3, bucket, prefix);
}

std::unique_ptr<Storage> open_repository(const fs::path& location, const fs::path& config_file) {
    if (!is_s3_location(location) || config_file.empty())
        return open_repository(location, RepositoryConfig{});
    return open_repository(location, load_config(config_file).repository);
}

std::string probe_repository(const fs::path& location, const RepositoryConfig& config) {
    if (!is_s3_location(location)) return "";
    try {
        auto storage = open_repository(location, config);
        const auto manifests = storage->list_prefix("manifest_");
        log::info("plan: repository ", location.string(), " answers (", manifests.size(),
                  " manifest(s) under its prefix)");
        return "";
    } catch (const Error& e) {
        return "repository " + location.string() + ": " + e.what();
    }
}

}  // namespace nightjar
