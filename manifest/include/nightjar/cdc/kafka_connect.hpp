#pragma once
// A client for the Kafka Connect REST API (one cluster): connector status, pause, resume, restart and
// offsets. Each call makes one request (to the first worker that answers) and throws KafkaConnectError for
// anything but success; retry_transient() (cdc/retry.hpp) decides whether to try again.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/core/error.hpp"
#include "nightjar/core/http.hpp"

namespace nightjar::cdc {

struct KafkaConnectTaskStatus {
    int id = 0;
    std::string state;  // RUNNING, PAUSED, FAILED, UNASSIGNED, RESTARTING
    std::string worker_id;
    std::string trace;  // empty unless FAILED
};

struct KafkaConnectStatus {
    std::string name;
    std::string state;  // the connector instance: RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING
    std::string worker_id;
    std::string trace;  // empty unless FAILED
    std::string type;   // "source" | "sink" | "" (before Kafka 1.0)
    std::vector<KafkaConnectTaskStatus> tasks;

    // The connector and every task are in `state` (a STOPPED connector has no tasks).
    bool settled_in(std::string_view state) const;
    bool any_failed() const;
    // "connector FAILED: <first trace line>" or "task 0 FAILED: <first trace line>"; "" when nothing failed.
    std::string failure() const;
    // "RUNNING (tasks: 0 RUNNING, 1 PAUSED)"
    std::string summary() const;
    nlohmann::json to_json() const;
};

// Kind::SourceUnavailable. `status()` is 0 when no HTTP answer came (refused, timed out).
class KafkaConnectError : public Error {
public:
    KafkaConnectError(const std::string& message, long status, bool transient, std::string api_message,
                      bool not_sent = false)
        : Error(Kind::SourceUnavailable, message),
          status_(status),
          transient_(transient),
          not_sent_(not_sent),
          api_message_(std::move(api_message)) {}
    long status() const noexcept { return status_; }
    // Worth retrying: no answer, 409 (rebalance), 5xx (including proxies' HTML 502/503), 408, 429.
    bool transient() const noexcept { return transient_; }
    // Every worker refused the connection: the request certainly never reached Kafka Connect.
    bool not_sent() const noexcept { return not_sent_; }
    // The worker's own message (the "message" of a JSON error body, or the first line of a plain-text one).
    const std::string& api_message() const noexcept { return api_message_; }
    // 404 "HTTP 404 Not Found": the worker does not know the endpoint (an older Kafka Connect).
    bool endpoint_unsupported() const noexcept {
        return status_ == 404 && api_message_ == "HTTP 404 Not Found";
    }
    // 405 "HTTP 405 Method Not Allowed": the path exists, the method does not (PATCH/DELETE offsets on 3.5).
    bool method_unsupported() const noexcept { return status_ == 405; }

private:
    long status_;
    bool transient_;
    bool not_sent_;
    std::string api_message_;
};

struct KafkaConnectOptions {
    std::vector<std::string> urls;                     // workers of one cluster, without a trailing slash
    std::string user;                                  // basic auth; empty: none
    std::string password;                              // basic auth password (never logged)
    std::chrono::milliseconds request_timeout{10000};  // one request
};

struct RestartOptions {
    bool include_tasks = false;  // also restart the tasks (Kafka Connect 3.0+)
    bool only_failed = false;    // only the FAILED instances (Kafka Connect 3.0+)
};

struct RestartOutcome {
    // false when the worker answered 204 although parameters were given: it predates 3.0 and ignored them,
    // so only the connector instance restarted (restart the FAILED tasks one by one).
    bool parameters_honoured = true;
    std::optional<KafkaConnectStatus> status;  // the 202 body: instances to restart marked RESTARTING
};

// GET /connectors/{n}: its config and type.
struct KafkaConnectInfo {
    std::string name;
    std::string type;  // "source" | "sink" | ""
    nlohmann::json config = nlohmann::json::object();
    std::string config_value(const std::string& key) const;  // "" when absent or not a string
};

// What a worker can do, detected by probing (spec §7), never by parsing its version.
struct KafkaConnectFeatures {
    bool stop = false;           // PUT …/stop (Kafka Connect 3.5+)
    bool offsets_read = false;   // GET …/offsets (3.5+)
    bool offsets_write = false;  // PATCH/DELETE …/offsets (3.6+)
    std::string evidence;        // what the probes answered, for logs and reports
};

class KafkaConnectClient {
public:
    explicit KafkaConnectClient(KafkaConnectOptions options);

    // GET / : {"version", "commit", "kafka_cluster_id"}.
    nlohmann::json server_info();
    // GET /connectors : every connector name (the source of truth for "all").
    std::vector<std::string> connectors();
    // GET /connectors/{n}/status
    KafkaConnectStatus status(const std::string& name);
    // PUT /connectors/{n}/pause and /resume: 202, asynchronous; poll status() to see the effect.
    void pause(const std::string& name);
    void resume(const std::string& name);
    // POST /connectors/{n}/restart[?includeTasks=&onlyFailed=]
    RestartOutcome restart(const std::string& name, RestartOptions options = {});
    // POST /connectors/{n}/tasks/{t}/restart
    void restart_task(const std::string& name, int task);
    // GET /connectors/{n}/offsets: the "offsets" list, or nullopt when the worker predates 3.5.
    std::optional<nlohmann::json> offsets(const std::string& name);
    // GET /connectors/{n}
    KafkaConnectInfo info(const std::string& name);
    // PUT /connectors/{n}/stop: 204; the connector goes STOPPED (tasks gone, final offsets committed).
    // Throws KafkaConnectError; endpoint_unsupported() on workers before 3.5.
    void stop(const std::string& name);
    // PATCH /connectors/{n}/offsets {"offsets": [...]} (3.6+, only when STOPPED): the worker's message.
    // Throws KafkaConnectError: 400 when not STOPPED, method_unsupported() on 3.5.
    std::string alter_offsets(const std::string& name, const nlohmann::json& offsets);
    // DELETE /connectors/{n}/offsets (3.6+, only when STOPPED): the worker's message.
    std::string reset_offsets(const std::string& name);
    // Probes `name` without changing anything: GET …/offsets (200: 3.5+; 404 "HTTP 404 Not Found": older,
    // then there is no stop either), and PATCH …/offsets with {} (400 "Partitions / offsets need to be
    // provided…", which Kafka Connect answers before looking at the state: 3.6+; 405: 3.5).
    KafkaConnectFeatures features(const std::string& name);

    // The worker URL that answered last (the first configured one before any request).
    const std::string& url() const { return options_.urls.at(current_); }
    const std::vector<std::string>& urls() const { return options_.urls; }
    // A copy whose requests last at most `limit` (and never longer than this client's own timeout): one
    // request of a phase bounded by a deadline. Clients are not shared between threads; copies are.
    KafkaConnectClient with_timeout(std::chrono::milliseconds limit) const;

private:
    HttpResponse call(std::string_view method, const std::string& path, const std::string& body = {});
    KafkaConnectOptions options_;
    HttpClient http_;
    std::size_t current_ = 0;
};

// Parses a ConnectorStateInfo body; Kind::SourceUnavailable names what is malformed.
KafkaConnectStatus parse_connector_status(const nlohmann::json& body, const std::string& what);
// The error for a non-2xx answer to `request` ("PUT http://w:8083/connectors/a/pause").
KafkaConnectError kafka_connect_error(const std::string& request, const HttpResponse& response);
// The first line of a trace, for logs.
std::string trace_first_line(const std::string& trace);
// Percent-encodes a connector name for a URL path.
std::string url_path_segment(std::string_view name);

}  // namespace nightjar::cdc
