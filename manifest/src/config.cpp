#include "nightjar/config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nightjar/error.hpp"
#include "nightjar/json_fields.hpp"

namespace nightjar {

using nlohmann::json;

namespace {

FilesConfig parse_files(const JsonFields& f) {
    f.only({"paths", "exclude", "on_unreadable"});
    FilesConfig c;
    c.paths = f.strings_or("paths", {});
    if (!f.has("paths")) f.fail("paths", "required field is missing");
    if (c.paths.empty()) f.fail("paths", "expected at least one path");
    for (std::size_t i = 0; i < c.paths.size(); ++i)
        if (c.paths[i].empty() || c.paths[i][0] != '/')
            f.fail("paths/" + std::to_string(i), "expected an absolute path, got " + describe_json(c.paths[i]));
    c.exclude = f.strings_or("exclude", {});
    c.on_unreadable = f.choice("on_unreadable", {"fail", "warn"}, "fail");
    return c;
}

}  // namespace

Config parse_config(const std::string& text, const std::filesystem::path& source) {
    json j;
    std::string what = "config " + source.string();
    try {
        j = json::parse(text, nullptr, true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
        throw Error(Kind::Config, what + ": not valid JSON: " + e.what());
    }
    JsonFields f(j, what, Kind::Config);
    f.only({"backup_dir", "compression", "files", "postgres"});
    Config c;
    c.source = source;
    c.backup_dir = f.string_or("backup_dir", "");
    if (auto comp = f.optional_object("compression")) {
        comp->only({"level", "threads"});
        c.compression.level = static_cast<int>(comp->integer_or("level", 1, 19, c.compression.level));
        c.compression.threads = static_cast<int>(comp->integer_or("threads", 0, 64, c.compression.threads));
    }
    if (auto files = f.optional_object("files")) c.files = parse_files(*files);
    if (auto pg = f.optional_object("postgres")) c.postgres = parse_postgres_config(*pg);
    return c;
}

Config load_config(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(Kind::Config, "config: cannot read " + path.string() + ": check the path given to --config");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

}  // namespace nightjar
