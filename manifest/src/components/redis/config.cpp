#include "nightjar/components/redis/config.hpp"

#include <cstdlib>
#include <fstream>

#include "nightjar/core/error.hpp"
#include "nightjar/core/json_fields.hpp"

namespace nightjar::redis {

std::string Endpoint::describe() const {
    if (!socket.empty()) return "redis " + socket;
    return "redis " + host + ":" + std::to_string(port) + (tls ? " (TLS)" : "");
}

RedisConfig parse_redis_config(const JsonFields& f) {
    f.only({"host", "port", "socket", "user", "password_file", "connect_timeout", "io_timeout", "commands",
            "fallback", "bgsave_timeout", "transfer", "tls"});
    RedisConfig c;
    Endpoint& e = c.endpoint;
    e.host = f.string_or("host", e.host);
    if (e.host.empty()) f.fail("host", "expected a host name or address");
    e.port = static_cast<int>(f.integer_or("port", 1, 65535, e.port));
    e.socket = f.string_or("socket", "");
    if (!e.socket.empty() && e.socket[0] != '/') f.fail("socket", "expected an absolute path");
    e.user = f.string_or("user", "");
    e.password_file = f.string_or("password_file", "");
    e.connect_timeout_s = static_cast<int>(f.integer_or("connect_timeout", 1, 3600, e.connect_timeout_s));
    e.io_timeout_s = static_cast<int>(f.integer_or("io_timeout", 1, 86400, e.io_timeout_s));
    if (auto cmds = f.optional_object("commands")) {
        cmds->only({"auth", "ping", "info", "replconf", "sync", "bgsave", "config"});
        auto name = [&](std::string_view key, std::string& field) {
            field = cmds->string_or(key, field);
            if (field.empty() || field.find_first_of(" \r\n") != std::string::npos)
                cmds->fail(key, "expected a command name without spaces");
        };
        name("auth", e.commands.auth);
        name("ping", e.commands.ping);
        name("info", e.commands.info);
        name("replconf", e.commands.replconf);
        name("sync", e.commands.sync);
        name("bgsave", e.commands.bgsave);
        name("config", e.commands.config);
    }
    if (auto t = f.optional_object("tls")) {
        t->only({"ca_file", "cert_file", "key_file", "server_name", "verify"});
        TlsConfig tls;
        auto path = [&](std::string_view key) {
            std::string v = t->string_or(key, "");
            if (t->has(key) && v.empty()) t->fail(key, "expected a file path");
            return v;
        };
        tls.ca_file = path("ca_file");
        tls.cert_file = path("cert_file");
        tls.key_file = path("key_file");
        if (tls.cert_file.empty() != tls.key_file.empty())
            t->fail(tls.cert_file.empty() ? "cert_file" : "key_file",
                    "cert_file and key_file go together (a client certificate and its key)");
        tls.server_name = t->string_or("server_name", "");
        tls.verify = t->boolean_or("verify", true);
        if (!e.socket.empty()) f.fail("tls", "TLS applies to host/port; a unix socket is plain: drop one");
        e.tls = tls;
    }
    c.fallback = f.choice("fallback", {"bgsave", "none"}, c.fallback);
    c.bgsave_timeout_s = static_cast<int>(f.integer_or("bgsave_timeout", 1, 86400, c.bgsave_timeout_s));
    c.transfer = f.choice("transfer", {"auto", "diskless", "disk"}, c.transfer);
    return c;
}

std::optional<std::string> resolve_password(const Endpoint& endpoint) {
    if (const char* env = std::getenv("REDISCLI_AUTH"); env && *env) return std::string(env);
    if (endpoint.password_file.empty()) return std::nullopt;
    std::ifstream in(endpoint.password_file);
    std::string line;
    if (!in || !std::getline(in, line))
        throw Error(Kind::Config, "redis: cannot read the password file " + endpoint.password_file +
                                      ": check /redis/password_file and its permissions");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

}  // namespace nightjar::redis
