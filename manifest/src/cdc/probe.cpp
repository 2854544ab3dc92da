#include "nightjar/cdc/probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "nightjar/components/postgres/connection.hpp"
#include "nightjar/core/json_fields.hpp"

namespace nightjar::cdc {

namespace {

// "host:port" (or "[v6]:port") -> {host, port}; nullopt when malformed.
std::optional<std::pair<std::string, int>> split_host_port(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return std::nullopt;
    std::string host = s.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = 0;
    for (char c : s.substr(colon + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        port = port * 10 + (c - '0');
        if (port > 65535) return std::nullopt;
    }
    if (port < 1) return std::nullopt;
    return std::make_pair(host, port);
}

ProbeResult tcp_probe(const std::string& host, int port, std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0)
        return {false, "cannot resolve " + host + ": " + gai_strerror(rc)};
    std::string last = "no address";
    ProbeResult result{false, ""};
    for (addrinfo* a = res; a && !result.ok; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last = std::strerror(errno);
            continue;
        }
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
            if (rc == 0) {
                last = "no answer within " + std::to_string(timeout.count()) + " ms";
                rc = -1;
            } else if (rc > 0) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                if (err) last = std::strerror(err);
            } else {
                last = std::strerror(errno);
            }
        } else if (rc != 0) {
            last = std::strerror(errno);
        }
        ::close(fd);
        if (rc == 0) result = {true, "connected"};
    }
    ::freeaddrinfo(res);
    if (!result.ok) result.detail = last;
    return result;
}

}  // namespace

std::string SourceProbe::describe() const {
    if (kind == "tcp") return "tcp " + host + ":" + std::to_string(port);
    if (kind == "postgres") {
        postgres::PgTarget t{.endpoint = postgres, .database = dbname, .connect_timeout = 5, .sslmode = ""};
        return "postgres " + t.describe();
    }
    return "none";
}

SourceProbe parse_source_probe(const JsonFields& f) {
    f.only({"tcp", "postgres"});
    SourceProbe p;
    if (f.has("tcp") == f.has("postgres"))
        f.fail("tcp", "give exactly one of tcp (\"host:port\") or postgres");
    if (f.has("tcp")) {
        std::string s = f.string("tcp");
        auto hp = split_host_port(s);
        if (!hp) f.fail("tcp", "expected \"host:port\", got " + describe_json(s));
        p.kind = "tcp";
        p.host = hp->first;
        p.port = hp->second;
        return p;
    }
    JsonFields pg = f.object("postgres");
    pg.only({"host", "port", "user", "dbname", "passfile"});
    p.kind = "postgres";
    p.postgres.host = pg.string_or("host", "");
    p.postgres.port = static_cast<int>(pg.integer_or("port", 1, 65535, 0));
    p.postgres.user = pg.string_or("user", "");
    p.postgres.passfile = pg.string_or("passfile", "");
    p.dbname = pg.string_or("dbname", p.dbname);
    return p;
}

ProbeResult run_probe(const SourceProbe& probe, std::chrono::milliseconds timeout) {
    if (probe.kind == "tcp") return tcp_probe(probe.host, probe.port, timeout);
    if (probe.kind == "postgres") {
        postgres::PgTarget target{
            .endpoint = probe.postgres,
            .database = probe.dbname,
            .connect_timeout = std::max(1, static_cast<int>(std::ceil(timeout.count() / 1000.0))),
            .sslmode = ""};
        try {
            postgres::PgConnection conn(target);
            std::string one = conn.scalar("SELECT 1");
            if (one != "1") return {false, "SELECT 1 returned " + one};
            return {true,
                    "SELECT 1 answered by PostgreSQL " + postgres::pg_version_string(conn.server_version())};
        } catch (const Error& e) {
            return {false, e.what()};
        }
    }
    return {true, "no probe configured"};
}

}  // namespace nightjar::cdc
