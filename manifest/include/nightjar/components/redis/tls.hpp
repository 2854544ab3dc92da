#pragma once
// Redis over TLS with hiredis 0.14, which has no TLS of its own: OpenSSL connects and verifies the server,
// and hiredis speaks the protocol over one end of a socketpair whose other end a bridge thread pumps through
// the TLS connection. hiredis (commands, pipelining, timeouts) and the raw SYNC reads see a plain fd.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace nightjar::redis {

// The `redis.tls` config object. Present (even empty) = TLS on.
struct TlsConfig {
    std::string ca_file;      // PEM CA bundle the server's certificate must chain to; empty = system store
    std::string cert_file;    // PEM client certificate (for servers with tls-auth-clients yes)
    std::string key_file;     // PEM private key of cert_file: a secret file (0600/0400, owned by us)
    std::string server_name;  // SNI and the name the certificate must carry; empty = the host
    bool verify = true;       // false: no chain or name check (testing only; logged as a warning)
};

// One TLS connection and its bridge. `fd()` is the plain end hiredis uses; the tunnel owns both ends until
// release_fd() hands the plain end over (hiredis closes it in redisFree).
class TlsTunnel {
public:
    // Connects TCP to host:port within `connect_timeout_s`, handshakes and verifies. Failures are
    // Kind::SourceUnavailable naming `what` (the endpoint) and the reason (the verify error, the TLS alert);
    // an unreadable cert/key file is Kind::Config naming the file.
    TlsTunnel(const std::string& host, int port, const TlsConfig& config, int connect_timeout_s,
              const std::string& what);
    ~TlsTunnel();
    TlsTunnel(const TlsTunnel&) = delete;
    TlsTunnel& operator=(const TlsTunnel&) = delete;

    int release_fd();           // the plain end; the caller closes it
    std::string error() const;  // why the bridge stopped early (a TLS error mid-stream), or empty
    std::string peer() const { return peer_; }  // "TLSv1.3 TLS_AES_256_GCM_SHA384"

private:
    void pump();
    void set_error(const std::string& e);

    struct Ssl;
    std::unique_ptr<Ssl> ssl_;
    int tcp_ = -1;
    int local_ = -1;  // the bridge's end
    int plain_ = -1;  // hiredis's end (until released)
    int stop_[2] = {-1, -1};
    std::string peer_;
    mutable std::mutex mu_;
    std::string error_;
    std::thread thread_;
};

}  // namespace nightjar::redis
