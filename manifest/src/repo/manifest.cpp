#include "nightjar/repo/manifest.hpp"

#include <chrono>
#include <ctime>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"
#include "nightjar/io/sha256.hpp"
#include "nightjar/repo/storage.hpp"

namespace nightjar {

using nlohmann::json;

const Artifact* Manifest::find(std::string_view name) const {
    for (const auto& a : artifacts)
        if (a.name == name) return &a;
    return nullptr;
}

io::PipelineSpec Artifact::spec() const {
    if (pipeline) return *pipeline;
    return io::PipelineSpec::legacy(compression == "none" ? io::Codec::None : io::Codec::Zstd);
}

void Artifact::set_pipeline(const io::PipelineSpec& spec) {
    pipeline = spec;
    compression = std::string(io::codec_name(spec.codec));
}

std::uint64_t Manifest::stored_bytes() const {
    std::uint64_t total = 0;
    for (const auto& a : artifacts) total += a.size;
    return total;
}

namespace {

json artifact_json(const Artifact& a) {
    json j{{"component", a.component},
           {"name", a.name},
           {"path", a.path},
           {"size", a.size},
           {"sha256", a.sha256},
           {"content_size", a.content_size},
           {"content_sha256", a.content_sha256},
           {"format", a.format},
           {"compression", a.compression},
           {"source", a.source}};
    if (a.pipeline) j["pipeline"] = a.pipeline->to_json();
    return j;
}

json body_json(const Manifest& m) {
    json artifacts = json::array();
    for (const auto& a : m.artifacts) artifacts.push_back(artifact_json(a));
    json components = json::array();
    for (const auto& c : m.components) {
        json cj{{"kind", c.kind}, {"status", c.status}, {"details", c.details}};
        if (!c.error.empty()) cj["error"] = c.error;
        components.push_back(std::move(cj));
    }
    json j{{"schema", m.schema},           {"id", m.id},           {"started_at", m.started_at},
           {"finished_at", m.finished_at}, {"host", m.host},       {"nightjar_version", m.nightjar_version},
           {"status", m.status},           {"options", m.options}, {"artifacts", artifacts},
           {"components", components}};
    if (!m.cdc.is_null()) j["cdc"] = m.cdc;
    if (!m.hooks.is_null()) j["hooks"] = m.hooks;
    return j;
}

std::string canonical(const json& j) {
    // Keys are sorted by nlohmann's default object type, so dump() is canonical. Invalid UTF-8 never
    // reaches here: components encode raw byte names themselves.
    return j.dump();
}

Artifact parse_artifact(const JsonFields& f) {
    f.only({"component", "name", "path", "size", "sha256", "content_size", "content_sha256", "format",
            "compression", "pipeline", "source"});
    Artifact a;
    a.component = f.string("component");
    a.name = f.string("name");
    a.path = f.string("path");
    if (!is_safe_relative(a.path)) f.fail("path", "artifact path escapes the backup directory: " + a.path);
    a.size = f.uint64("size");
    a.sha256 = f.string("sha256");
    if (!io::is_sha256_hex(a.sha256))
        f.fail("sha256", "malformed SHA-256 (64 lowercase hex digits expected)");
    a.content_size = f.uint64("content_size");
    a.content_sha256 = f.string("content_sha256");
    if (!io::is_sha256_hex(a.content_sha256))
        f.fail("content_sha256", "malformed SHA-256 (64 lowercase hex digits expected)");
    a.format = f.string("format");
    a.compression = f.choice("compression", {"zstd", "none"}, "");
    if (a.compression.empty()) f.fail("compression", "required field is missing");
    if (f.has("pipeline")) {
        JsonFields p = f.object("pipeline");
        a.pipeline = io::PipelineSpec::from_json(p);
        if (io::codec_name(a.pipeline->codec) != a.compression)
            p.fail("codec", "the pipeline's codec " + std::string(io::codec_name(a.pipeline->codec)) +
                                " contradicts the artifact's compression " + a.compression);
    }
    a.source = f.object("source").raw();
    return a;
}

Manifest parse_manifest_json(json& j, const std::string& what);

}  // namespace

json to_json_with_digest(const Manifest& m) {
    json j = body_json(m);
    j["manifest_sha256"] = io::sha256_hex(canonical(j));
    return j;
}

std::string serialize(const Manifest& m) {
    return to_json_with_digest(m).dump(2) + "\n";
}

Manifest parse_manifest(std::string_view text, const std::string& what) {
    if (text.size() > kManifestMaxBytes)
        throw Error(Kind::Verification, what + ": larger than the " +
                                            std::to_string(kManifestMaxBytes >> 20) +
                                            " MiB a manifest may have");
    json j = parse_json_document(text, what, Kind::Verification);
    try {
        return parse_manifest_json(j, what);
    } catch (const json::exception& e) {
        // A case the field checks missed is still this document's fault, never an internal error.
        throw Error(Kind::Verification, what + ": " + e.what());
    }
}

namespace {

Manifest parse_manifest_json(json& j, const std::string& what) {
    JsonFields f(j, what, Kind::Verification);
    if (f.has("schema") && f.integer("schema", 0, 1 << 30) != kManifestSchema)
        f.fail("schema", "unknown schema version " + describe_json(j["schema"]) + " (this nightjar reads " +
                             std::to_string(kManifestSchema) + ")");
    f.only({"schema", "id", "started_at", "finished_at", "host", "nightjar_version", "status", "options",
            "artifacts", "components", "cdc", "hooks", "manifest_sha256"});
    std::string digest = f.string("manifest_sha256");
    if (!io::is_sha256_hex(digest)) f.fail("manifest_sha256", "malformed SHA-256");
    Manifest m;
    m.schema = static_cast<int>(f.integer("schema", kManifestSchema, kManifestSchema));
    m.id = f.string("id");
    if (!is_backup_id(m.id)) f.fail("id", "malformed backup id " + describe_json(j["id"]));
    m.started_at = f.string("started_at");
    m.finished_at = f.string("finished_at");
    m.host = f.string("host");
    m.nightjar_version = f.string("nightjar_version");
    m.status = f.choice("status", {"complete", "partial"}, "");
    if (m.status.empty()) f.fail("status", "required field is missing");
    m.options = f.object("options").raw();
    const json& arts = f.array("artifacts");
    for (std::size_t i = 0; i < arts.size(); ++i)
        m.artifacts.push_back(parse_artifact(f.element("artifacts", i)));
    const json& comps = f.array("components");
    for (std::size_t i = 0; i < comps.size(); ++i) {
        JsonFields c = f.element("components", i);
        c.only({"kind", "status", "error", "details"});
        m.components.push_back({c.string("kind"), c.choice("status", {"ok", "failed", "skipped"}, "ok"),
                                c.string_or("error", ""), c.object("details").raw()});
    }
    if (f.has("cdc")) m.cdc = j["cdc"];
    if (f.has("hooks")) m.hooks = j["hooks"];
    if (io::sha256_hex(canonical(body_json(m))) != digest)
        throw Error(
            Kind::Verification,
            what + ": the manifest's self-digest does not match its content (it was edited or damaged)");
    return m;
}

}  // namespace

std::string manifest_file_name(const std::string& id) {
    return "manifest_" + id + ".json";
}

bool is_backup_id(std::string_view id) {
    if (id.size() < 15) return false;
    for (std::size_t i = 0; i < 15; ++i) {
        if (i == 8 ? id[i] != '_' : (id[i] < '0' || id[i] > '9')) return false;
    }
    if (id.size() == 15) return true;
    if (id[15] != '_' || id.size() == 16) return false;
    for (std::size_t i = 16; i < id.size(); ++i)
        if (id[i] < '0' || id[i] > '9') return false;
    return id.size() <= 20;
}

std::string backup_id_for(std::int64_t unix_seconds) {
    std::time_t t = unix_seconds;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d_%H%M%S", &tm);
    return buf;
}

std::int64_t parse_backup_id_time(std::string_view id) {
    if (!is_backup_id(id)) return -1;
    std::tm tm{};
    std::string s(id.substr(0, 15));
    if (!strptime(s.c_str(), "%Y%m%d_%H%M%S", &tm)) return -1;
    return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace nightjar
