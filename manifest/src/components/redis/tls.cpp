#include "nightjar/components/redis/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/core/log.hpp"
#include "nightjar/io/secret_file.hpp"

namespace nightjar::redis {

struct TlsTunnel::Ssl {
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    ~Ssl() {
        if (ssl) SSL_free(ssl);
        if (ctx) SSL_CTX_free(ctx);
    }
};

namespace {

using Clock = std::chrono::steady_clock;

// The OpenSSL error queue as one line (emptied).
std::string ssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out;
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool is_ip(const std::string& host) {
    in6_addr a6{};
    in_addr a4{};
    return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// TCP connect within the deadline; the socket comes back non-blocking.
int tcp_connect(const std::string& host, int port, Clock::time_point deadline, const std::string& what) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0)
        throw Error(Kind::SourceUnavailable,
                    what + ": cannot resolve " + host + ": " + ::gai_strerror(rc) + ": check /redis/host");
    std::string last = "no address";
    for (addrinfo* a = list; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        set_nonblocking(fd);
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            rc = ::poll(&p, 1, remaining_ms(deadline));
            int err = 0;
            socklen_t len = sizeof err;
            if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                rc = 0;
            } else {
                errno = rc == 0 ? ETIMEDOUT : err;
                rc = -1;
            }
        }
        if (rc == 0) {
            ::freeaddrinfo(list);
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        last = std::strerror(errno);
        ::close(fd);
    }
    ::freeaddrinfo(list);
    throw Error(Kind::SourceUnavailable, what + ": cannot connect: " + last +
                                             ": is the server running there, with tls-port on that port?");
}

}  // namespace

TlsTunnel::TlsTunnel(const std::string& host, int port, const TlsConfig& config, int connect_timeout_s,
                     const std::string& what)
    : ssl_(std::make_unique<Ssl>()) {
    std::signal(SIGPIPE, SIG_IGN);
    ERR_clear_error();
    ssl_->ctx = SSL_CTX_new(TLS_client_method());
    if (!ssl_->ctx) throw Error(Kind::Internal, what + ": cannot create a TLS context: " + ssl_errors());
    SSL_CTX_set_min_proto_version(ssl_->ctx, TLS1_2_VERSION);
    if (config.verify) {
        SSL_CTX_set_verify(ssl_->ctx, SSL_VERIFY_PEER, nullptr);
        if (!config.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(ssl_->ctx, config.ca_file.c_str(), nullptr) != 1)
                throw Error(Kind::Config, "redis: cannot load the CA file " + config.ca_file + ": " +
                                              ssl_errors() + ": check /redis/tls/ca_file (PEM)");
        } else if (SSL_CTX_set_default_verify_paths(ssl_->ctx) != 1) {
            throw Error(Kind::Config, "redis: cannot load the system CA store: " + ssl_errors() +
                                          ": set /redis/tls/ca_file");
        }
    } else {
        log::warn(what,
                  ": TLS without verification (/redis/tls/verify is false): the server is not "
                  "authenticated");
        SSL_CTX_set_verify(ssl_->ctx, SSL_VERIFY_NONE, nullptr);
    }
    if (!config.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ssl_->ctx, config.cert_file.c_str()) != 1)
            throw Error(Kind::Config, "redis: cannot load the client certificate " + config.cert_file + ": " +
                                          ssl_errors() + ": check /redis/tls/cert_file (PEM)");
        std::string pem = io::read_secret_file(
            config.key_file, {.max_bytes = 64 * 1024, .kind = Kind::Config, .what = "redis.tls.key_file"});
        BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
        EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
        if (bio) BIO_free(bio);
        io::wipe_string(pem);
        if (!key)
            throw Error(Kind::Config, "redis: cannot read the private key in " + config.key_file +
                                          ": expected an unencrypted PEM key: check /redis/tls/key_file");
        int ok = SSL_CTX_use_PrivateKey(ssl_->ctx, key);
        EVP_PKEY_free(key);
        if (ok != 1 || SSL_CTX_check_private_key(ssl_->ctx) != 1) {
            ERR_clear_error();
            throw Error(Kind::Config, "redis: the key in " + config.key_file +
                                          " does not match the certificate " + config.cert_file +
                                          ": check /redis/tls/cert_file and key_file");
        }
    }

    const auto deadline = Clock::now() + std::chrono::seconds(connect_timeout_s);
    tcp_ = tcp_connect(host, port, deadline, what);
    try {
        ssl_->ssl = SSL_new(ssl_->ctx);
        if (!ssl_->ssl)
            throw Error(Kind::Internal, what + ": cannot create a TLS connection: " + ssl_errors());
        SSL_set_fd(ssl_->ssl, tcp_);
        SSL_set_mode(ssl_->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        const std::string name = config.server_name.empty() ? host : config.server_name;
        if (!is_ip(name)) SSL_set_tlsext_host_name(ssl_->ssl, name.c_str());
        if (config.verify) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl_->ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            int ok = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                 : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
            if (ok != 1)
                throw Error(Kind::Config,
                            "redis: cannot check the server name " + name + ": check /redis/tls/server_name");
        }
        for (;;) {
            ERR_clear_error();
            int rc = SSL_connect(ssl_->ssl);
            if (rc == 1) break;
            int e = SSL_get_error(ssl_->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                pollfd p{tcp_, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
                int left = remaining_ms(deadline);
                if (left == 0 || ::poll(&p, 1, left) == 0)
                    throw Error(
                        Kind::SourceUnavailable,
                        what + ": the TLS handshake did not finish within " +
                            std::to_string(connect_timeout_s) +
                            " s: is this the server's tls-port? (raise /redis/connect_timeout if it is)");
                continue;
            }
            long v = SSL_get_verify_result(ssl_->ssl);
            if (config.verify && v != X509_V_OK)
                throw Error(Kind::SourceUnavailable,
                            what + ": TLS: the server's certificate failed verification: " +
                                X509_verify_cert_error_string(v) + " (server name " + name +
                                "): check /redis/tls/ca_file and /redis/tls/server_name");
            std::string detail = ssl_errors();
            if (detail.empty())
                detail = e == SSL_ERROR_SYSCALL && errno ? std::strerror(errno)
                                                         : "the server closed the connection";
            throw Error(Kind::SourceUnavailable,
                        what + ": TLS handshake failed: " + detail +
                            ": is this the server's tls-port, and does it want a client certificate "
                            "(/redis/tls/cert_file, key_file)?");
        }
        peer_ = std::string(SSL_get_version(ssl_->ssl)) + " " + SSL_get_cipher_name(ssl_->ssl);
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 || ::pipe2(stop_, O_CLOEXEC) != 0)
            throw_errno(Kind::Internal, "redis: cannot create the TLS bridge", what);
        local_ = pair[0];
        plain_ = pair[1];
        set_nonblocking(local_);
        thread_ = std::thread([this] { pump(); });
    } catch (...) {
        for (int fd : {tcp_, local_, plain_, stop_[0], stop_[1]})
            if (fd >= 0) ::close(fd);
        throw;
    }
}

TlsTunnel::~TlsTunnel() {
    if (thread_.joinable()) {
        char c = 1;
        (void)!::write(stop_[1], &c, 1);
        thread_.join();
    }
    for (int fd : {tcp_, local_, plain_, stop_[0], stop_[1]})
        if (fd >= 0) ::close(fd);
}

int TlsTunnel::release_fd() {
    int fd = plain_;
    plain_ = -1;
    return fd;
}

std::string TlsTunnel::error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
}

void TlsTunnel::set_error(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = e;
}

// One thread, both directions, everything non-blocking: TLS records from the server are decrypted into
// `down` and written to the plain end; bytes from the plain end are read into `up` and encrypted. Ends when
// hiredis closes its end (then close_notify is sent), on a TLS error (recorded; the plain end is closed so
// hiredis sees the connection end), or when the tunnel is destroyed.
void TlsTunnel::pump() {
    SSL* ssl = ssl_->ssl;
    std::vector<char> down(256 * 1024), up(64 * 1024);
    std::size_t down_off = 0, down_len = 0, up_off = 0, up_len = 0;
    bool tls_eof = false, local_eof = false, local_shut = false;
    short read_wants = POLLIN, write_wants = POLLOUT;
    for (;;) {
        bool progress = false;
        bool local_out_blocked = false, local_in_blocked = false;
        // Server -> hiredis.
        if (!tls_eof && down_len == 0) {
            ERR_clear_error();
            int n = SSL_read(ssl, down.data(), static_cast<int>(down.size()));
            if (n > 0) {
                down_off = 0;
                down_len = static_cast<std::size_t>(n);
                progress = true;
            } else {
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ) {
                    read_wants = POLLIN;
                } else if (e == SSL_ERROR_WANT_WRITE) {
                    read_wants = POLLOUT;
                } else {
                    if (e != SSL_ERROR_ZERO_RETURN) {
                        std::string d = ssl_errors();
                        if (!d.empty()) set_error("TLS read failed: " + d);
                    }
                    tls_eof = true;
                    progress = true;
                }
            }
        }
        if (down_len > 0) {
            ssize_t n = ::send(local_, down.data() + down_off, down_len, MSG_NOSIGNAL);
            if (n > 0) {
                down_off += static_cast<std::size_t>(n);
                down_len -= static_cast<std::size_t>(n);
                progress = true;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                local_out_blocked = true;
            } else if (n < 0 && errno != EINTR) {
                break;  // hiredis closed its end
            }
        }
        if (tls_eof && down_len == 0 && !local_shut) {
            ::shutdown(local_, SHUT_WR);  // hiredis reads the end of the connection
            local_shut = true;
        }
        // hiredis -> server.
        if (!local_eof && up_len == 0) {
            ssize_t n = ::read(local_, up.data(), up.size());
            if (n > 0) {
                up_off = 0;
                up_len = static_cast<std::size_t>(n);
                progress = true;
            } else if (n == 0) {
                local_eof = true;
                progress = true;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                local_in_blocked = true;
            } else if (errno != EINTR) {
                local_eof = true;
            }
        }
        if (up_len > 0) {
            if (tls_eof) {
                up_len = 0;  // the server is gone; hiredis will see the end
            } else {
                ERR_clear_error();
                int n = SSL_write(ssl, up.data() + up_off, static_cast<int>(up_len));
                if (n > 0) {
                    up_off += static_cast<std::size_t>(n);
                    up_len -= static_cast<std::size_t>(n);
                    progress = true;
                } else {
                    int e = SSL_get_error(ssl, n);
                    if (e == SSL_ERROR_WANT_WRITE) {
                        write_wants = POLLOUT;
                    } else if (e == SSL_ERROR_WANT_READ) {
                        write_wants = POLLIN;
                    } else {
                        set_error("TLS write failed: " + ssl_errors());
                        break;
                    }
                }
            }
        }
        if (local_eof && up_len == 0) {
            if (!tls_eof) {
                ERR_clear_error();
                SSL_shutdown(ssl);  // close_notify, best effort
            }
            break;
        }
        if (progress) continue;
        pollfd p[3];
        nfds_t count = 0;
        short tcp_events = 0;
        if (!tls_eof && down_len == 0) tcp_events |= read_wants;
        if (up_len > 0 && !tls_eof) tcp_events |= write_wants;
        p[count++] = pollfd{tcp_events ? tcp_ : -1, tcp_events, 0};
        short local_events = 0;
        if (local_out_blocked) local_events |= POLLOUT;
        if (local_in_blocked) local_events |= POLLIN;
        p[count++] = pollfd{local_events || !local_eof ? local_ : -1, local_events, 0};
        p[count++] = pollfd{stop_[0], POLLIN, 0};
        if (::poll(p, count, -1) < 0 && errno != EINTR) break;
        if (p[2].revents) break;
        if ((p[1].revents & (POLLERR | POLLHUP)) && !(p[1].revents & POLLIN)) {
            if (down_len > 0) break;  // nobody will read what is left
            local_eof = true;
        }
    }
    ::shutdown(local_, SHUT_RDWR);
}

}  // namespace nightjar::redis
