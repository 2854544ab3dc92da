#include "nightjar/components/postgres/config.hpp"

#include <algorithm>

#include "nightjar/core/json_fields.hpp"

namespace nightjar::postgres {

namespace {

PgEndpoint parse_endpoint(const JsonFields& f, PgEndpoint base) {
    base.host = f.string_or("host", base.host);
    base.port = static_cast<int>(f.integer_or("port", 1, 65535, base.port));
    base.user = f.string_or("user", base.user);
    base.passfile = f.string_or("passfile", base.passfile);
    if (f.has("passfile") && (base.passfile.empty() || base.passfile[0] != '/'))
        f.fail("passfile", "expected an absolute path, got " + describe_json(f.raw().at("passfile")));
    return base;
}

}  // namespace

PgEndpoint PostgresConfig::endpoint_for(const std::string& database) const {
    auto it = overrides.find(database);
    return it == overrides.end() ? endpoint : it->second;
}

void PostgresConfig::override_endpoint(const std::string& host, int port) {
    auto apply = [&](PgEndpoint& e) {
        if (!host.empty()) e.host = host;
        if (port > 0) e.port = port;
    };
    apply(endpoint);
    for (auto& [name, e] : overrides) apply(e);
}

PostgresConfig parse_postgres_config(const JsonFields& f) {
    f.only({"host", "port", "user", "passfile", "databases", "overrides", "maintenance_db", "globals",
            "fail_fast", "bin_dir", "connect_timeout", "sslmode"});
    PostgresConfig c;
    c.endpoint = parse_endpoint(f, {});
    if (!f.has("databases")) f.fail("databases", "required field is missing (a list of names, or \"all\")");
    c.databases = f.string_or_strings("databases", {});
    if (c.databases.empty()) f.fail("databases", "expected \"all\" or at least one database name");
    for (std::size_t i = 0; i < c.databases.size(); ++i) {
        if (c.databases[i].empty())
            f.fail("databases/" + std::to_string(i), "expected a database name, got \"\"");
        if (c.databases[i] == "all" && c.databases.size() > 1)
            f.fail("databases/" + std::to_string(i), "\"all\" cannot be combined with names");
    }
    if (auto ov = f.optional_object("overrides")) {
        for (const auto& [name, value] : ov->raw().items()) {
            if (!c.all_databases() &&
                std::find(c.databases.begin(), c.databases.end(), name) == c.databases.end())
                ov->fail(name, "not one of the configured databases");
            JsonFields one = ov->object(name);
            one.only({"host", "port", "user", "passfile"});
            c.overrides[name] = parse_endpoint(one, c.endpoint);
        }
    }
    c.maintenance_db = f.string_or("maintenance_db", c.maintenance_db);
    c.globals = f.boolean_or("globals", c.globals);
    c.fail_fast = f.boolean_or("fail_fast", c.fail_fast);
    c.bin_dir = f.string_or("bin_dir", c.bin_dir);
    if (!c.bin_dir.empty() && c.bin_dir[0] != '/')
        f.fail("bin_dir", "expected an absolute path, got " + describe_json(c.bin_dir));
    c.connect_timeout = static_cast<int>(f.integer_or("connect_timeout", 1, 3600, c.connect_timeout));
    c.sslmode =
        f.choice("sslmode", {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}, "");
    return c;
}

std::optional<std::pair<std::string, std::string>> parse_rename(const std::string& spec) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) return std::nullopt;
    return std::make_pair(spec.substr(0, eq), spec.substr(eq + 1));
}

}  // namespace nightjar::postgres
