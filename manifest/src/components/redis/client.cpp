#include "nightjar/components/redis/client.hpp"

#include <hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <utility>

#include "nightjar/core/error.hpp"

namespace nightjar::redis {

Reply::Reply(redisReply* r) : Reply(r, true) {}
Reply::Reply(redisReply* r, bool owned)
    : r_(owned ? std::shared_ptr<redisReply>(r, [](redisReply* p) { freeReplyObject(p); })
               : std::shared_ptr<redisReply>(r, [](redisReply*) {})) {}
bool Reply::is_error() const {
    return r_->type == REDIS_REPLY_ERROR;
}
bool Reply::is_nil() const {
    return r_->type == REDIS_REPLY_NIL;
}
bool Reply::is_array() const {
    return r_->type == REDIS_REPLY_ARRAY;
}
bool Reply::is_integer() const {
    return r_->type == REDIS_REPLY_INTEGER;
}
std::string Reply::str() const {
    return std::string(view());
}
std::string_view Reply::view() const {
    if (r_->type == REDIS_REPLY_STRING || r_->type == REDIS_REPLY_STATUS || r_->type == REDIS_REPLY_ERROR)
        return {r_->str, r_->len};
    return {};
}
long long Reply::integer() const {
    return r_->type == REDIS_REPLY_INTEGER ? r_->integer : 0;
}
std::size_t Reply::size() const {
    return r_->type == REDIS_REPLY_ARRAY ? r_->elements : 0;
}
Reply Reply::element(std::size_t i) const {
    if (i >= size()) throw Error(Kind::SourceUnavailable, "redis: unexpected reply shape");
    Reply child(r_->element[i], false);
    child.r_ = std::shared_ptr<redisReply>(r_, r_->element[i]);  // keeps the parent alive
    return child;
}

class Connection::RawReader final : public io::Reader {
public:
    explicit RawReader(Connection& c) : c_(c) {}
    std::size_t read(io::MutableBytes buf) override {
        for (;;) {
            ssize_t n = ::read(c_.c_->fd, buf.data(), buf.size());
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                c_.fail("no data for " + std::to_string(c_.endpoint_.io_timeout_s) +
                        " s while reading the snapshot: raise /redis/io_timeout (it must exceed the server's "
                        "repl-diskless-sync-delay plus the time to fork)");
            c_.fail(std::string("read failed: ") + std::strerror(errno));
        }
    }

private:
    Connection& c_;
};

namespace {

timeval seconds(int s) {
    return timeval{s, 0};
}

std::string error_text(const redisContext* c) {
    return c->errstr[0] ? c->errstr : "connection error";
}

}  // namespace

Connection::Connection(const Endpoint& endpoint, const std::optional<std::string>& password)
    : endpoint_(endpoint), what_(endpoint.describe()) {
    // hiredis writes to sockets with write(): a server that goes away must be an error, not a SIGPIPE death.
    std::signal(SIGPIPE, SIG_IGN);
    if (endpoint.tls && endpoint.socket.empty()) {
        tunnel_ = std::make_unique<TlsTunnel>(endpoint.host, endpoint.port, *endpoint.tls,
                                              endpoint.connect_timeout_s, what_);
        int fd = tunnel_->release_fd();
        c_ = redisConnectFd(fd);
        if (!c_) ::close(fd);
    } else {
        c_ = endpoint.socket.empty()
                 ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                           seconds(endpoint.connect_timeout_s))
                 : redisConnectUnixWithTimeout(endpoint.socket.c_str(), seconds(endpoint.connect_timeout_s));
    }
    if (!c_) throw Error(Kind::SourceUnavailable, what_ + ": cannot allocate a connection");
    if (c_->err) {
        std::string e = error_text(c_);
        redisFree(c_);
        c_ = nullptr;
        throw Error(Kind::SourceUnavailable,
                    what_ + ": cannot connect: " + e + ": is the server running there?");
    }
    raw_ = std::make_unique<RawReader>(*this);
    try {
        log_in(password);
    } catch (...) {
        redisFree(std::exchange(c_, nullptr));
        throw;
    }
}

void Connection::log_in(const std::optional<std::string>& password) {
    const Endpoint& endpoint = endpoint_;
    set_io_timeout(endpoint.connect_timeout_s);
    if (password) {
        std::vector<std::string_view> argv{endpoint.commands.auth};
        if (!endpoint.user.empty()) argv.push_back(endpoint.user);
        argv.push_back(*password);
        Reply r = command(argv);
        if (r.is_error())
            fail("authentication failed" + (endpoint.user.empty() ? "" : " for user " + endpoint.user) +
                 ": " + r.str() + ": check REDISCLI_AUTH or /redis/password_file");
    }
    Reply pong = command({endpoint.commands.ping});
    if (pong.is_error()) {
        std::string e = pong.str();
        if (e.rfind("NOAUTH", 0) == 0)
            fail("the server requires a password: " + e + ": set REDISCLI_AUTH or /redis/password_file");
        fail(endpoint.commands.ping + " failed: " + e);
    }
    set_io_timeout(endpoint.io_timeout_s);
}

Connection::Connection(Connection&& o) noexcept
    : endpoint_(std::move(o.endpoint_)),
      what_(std::move(o.what_)),
      tunnel_(std::move(o.tunnel_)),
      c_(std::exchange(o.c_, nullptr)) {
    raw_ = std::make_unique<RawReader>(*this);
}

Connection::~Connection() {
    if (c_) redisFree(c_);
}

void Connection::fail(const std::string& message) const {
    std::string tls = tunnel_ ? tunnel_->error() : "";
    throw Error(Kind::SourceUnavailable, what_ + ": " + message + (tls.empty() ? "" : " (" + tls + ")"));
}

void Connection::set_io_timeout(int s) {
    if (redisSetTimeout(c_, seconds(s)) != REDIS_OK) fail("cannot set the I/O timeout: " + error_text(c_));
}

namespace {
struct ArgvView {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    explicit ArgvView(const std::vector<std::string_view>& argv) {
        for (auto a : argv) {
            ptrs.push_back(a.data());
            lens.push_back(a.size());
        }
    }
};
}  // namespace

Reply Connection::command(const std::vector<std::string_view>& argv) {
    ArgvView a(argv);
    void* r = redisCommandArgv(c_, static_cast<int>(argv.size()), a.ptrs.data(), a.lens.data());
    if (!r) fail(std::string(argv.empty() ? "" : argv[0]) + " failed: " + error_text(c_));
    return Reply(static_cast<redisReply*>(r));
}

Reply Connection::checked(const std::vector<std::string_view>& argv, const std::string& what) {
    Reply r = command(argv);
    if (r.is_error()) fail(what + ": " + r.str());
    return r;
}

void Connection::append(const std::vector<std::string_view>& argv) {
    ArgvView a(argv);
    if (redisAppendCommandArgv(c_, static_cast<int>(argv.size()), a.ptrs.data(), a.lens.data()) != REDIS_OK)
        fail("cannot queue a command: " + error_text(c_));
}

void Connection::flush() {
    int done = 0;
    while (!done)
        if (redisBufferWrite(c_, &done) != REDIS_OK)
            fail("writing queued commands failed: " + error_text(c_));
}

Reply Connection::get_reply() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK || !r) fail("reading a reply failed: " + error_text(c_));
    return Reply(static_cast<redisReply*>(r));
}

namespace {
bool is_refusal(std::string_view e) {
    return e.rfind("NOPERM", 0) == 0 || e.rfind("ERR unknown command", 0) == 0;
}
}  // namespace

Connection::Permission Connection::probe_permission(const std::vector<std::string>& argv, bool harmless) {
    std::vector<std::string_view> args;
    for (const auto& a : argv) args.push_back(a);
    // ACL DRYRUN answers OK, or a bulk string with the refusal; an error reply means it cannot answer.
    std::vector<std::string_view> dry{"ACL", "DRYRUN", endpoint_.user.empty() ? "default" : endpoint_.user};
    dry.insert(dry.end(), args.begin(), args.end());
    Reply r = command(dry);
    if (!r.is_error()) {
        std::string text = r.str();
        if (text == "OK") return {true, true, ""};
        return {true, false, text};
    }
    std::string why = "ACL DRYRUN: " + r.str();
    Reply multi = command({"MULTI"});
    if (!multi.is_error()) {
        Reply queued = command(args);
        Reply discard = command({"DISCARD"});
        (void)discard;
        if (queued.is_error() && is_refusal(queued.view())) return {true, false, queued.str()};
        // QUEUED, or an error that is not an ACL refusal ("not allowed inside a transaction").
        return {true, true, ""};
    }
    why += "; MULTI: " + multi.str();
    if (harmless) {
        Reply direct = command(args);
        if (direct.is_error() && is_refusal(direct.view())) return {true, false, direct.str()};
        return {true, true, ""};
    }
    return {false, false, why};
}

std::map<std::string, std::string> Connection::info(const std::string& section) {
    Reply r = checked({endpoint_.commands.info, section}, endpoint_.commands.info + " " + section);
    return parse_info(r.view());
}

Keyspace Connection::keyspace() {
    return parse_keyspace(info("keyspace"));
}

bool Connection::reader_empty() const {
    return c_->reader->pos == c_->reader->len && c_->obuf[0] == '\0';
}

void Connection::write_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(c_->fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(std::string("write failed: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

io::Reader& Connection::raw_reader() {
    return *raw_;
}

std::map<std::string, std::string> parse_info(std::string_view text) {
    std::map<std::string, std::string> out;
    while (!text.empty()) {
        std::size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line[0] == '#') continue;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        out.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    }
    return out;
}

Keyspace parse_keyspace(const std::map<std::string, std::string>& info) {
    Keyspace out;
    for (const auto& [key, value] : info) {
        if (key.rfind("db", 0) != 0 || key.size() < 3) continue;
        int db = 0;
        try {
            db = std::stoi(key.substr(2));
        } catch (const std::exception&) {
            continue;
        }
        KeyspaceEntry e;
        std::string_view rest = value;
        while (!rest.empty()) {
            std::size_t comma = rest.find(',');
            std::string_view kv = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            std::size_t eq = kv.find('=');
            if (eq == std::string_view::npos) continue;
            std::string name(kv.substr(0, eq));
            std::uint64_t v = std::strtoull(std::string(kv.substr(eq + 1)).c_str(), nullptr, 10);
            if (name == "keys") e.keys = v;
            if (name == "expires") e.expires = v;
        }
        out[db] = e;
    }
    return out;
}

}  // namespace nightjar::redis
