#include "nightjar/cdc/kafka_connect.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "nightjar/io/process.hpp"

namespace nightjar::cdc {

using nlohmann::json;

namespace {

std::string json_string(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

json parse_body(const HttpResponse& r, const std::string& request) {
    try {
        return json::parse(r.body);
    } catch (const json::parse_error&) {
        throw KafkaConnectError(request + ": answered " + std::to_string(r.status) +
                                    " with a body that is not JSON: " + first_line(r.body.substr(0, 200)) +
                                    ": check that the URL names a Kafka Connect worker",
                                r.status, false, first_line(r.body));
    }
}

}  // namespace

bool KafkaConnectStatus::settled_in(std::string_view s) const {
    if (state != s) return false;
    for (const auto& t : tasks)
        if (t.state != s) return false;
    return true;
}

bool KafkaConnectStatus::any_failed() const {
    if (state == "FAILED") return true;
    for (const auto& t : tasks)
        if (t.state == "FAILED") return true;
    return false;
}

std::string KafkaConnectStatus::failure() const {
    if (state == "FAILED") return "connector FAILED: " + trace_first_line(trace);
    for (const auto& t : tasks)
        if (t.state == "FAILED")
            return "task " + std::to_string(t.id) + " FAILED: " + trace_first_line(t.trace);
    return "";
}

std::string KafkaConnectStatus::summary() const {
    std::string s = state + " (tasks:";
    if (tasks.empty()) s += " none";
    for (std::size_t i = 0; i < tasks.size(); ++i)
        s += (i ? ", " : " ") + std::to_string(tasks[i].id) + " " + tasks[i].state;
    return s + ")";
}

json KafkaConnectStatus::to_json() const {
    json j{{"state", state}, {"tasks", json::array()}};
    if (!trace.empty()) j["trace"] = trace_first_line(trace);
    for (const auto& t : tasks) {
        json tj{{"id", t.id}, {"state", t.state}};
        if (!t.trace.empty()) tj["trace"] = trace_first_line(t.trace);
        j["tasks"].push_back(tj);
    }
    return j;
}

KafkaConnectStatus parse_connector_status(const json& body, const std::string& what) {
    auto bad = [&](const std::string& why) {
        return KafkaConnectError(what + ": unexpected status body: " + why, 200, false, "");
    };
    if (!body.is_object()) throw bad("expected an object");
    KafkaConnectStatus s;
    s.name = json_string(body, "name");
    s.type = json_string(body, "type");
    auto c = body.find("connector");
    if (c == body.end() || !c->is_object() || !c->contains("state") || !(*c)["state"].is_string())
        throw bad("no connector.state");
    s.state = json_string(*c, "state");
    s.worker_id = json_string(*c, "worker_id");
    s.trace = json_string(*c, "trace");
    auto tasks = body.find("tasks");
    if (tasks != body.end() && !tasks->is_null()) {
        if (!tasks->is_array()) throw bad("tasks is not a list");
        for (const auto& t : *tasks) {
            if (!t.is_object() || !t.contains("state") || !t["state"].is_string())
                throw bad("a task has no state");
            KafkaConnectTaskStatus ts;
            ts.id = t.contains("id") && t["id"].is_number_integer() ? t["id"].get<int>() : 0;
            ts.state = json_string(t, "state");
            ts.worker_id = json_string(t, "worker_id");
            ts.trace = json_string(t, "trace");
            s.tasks.push_back(std::move(ts));
        }
    }
    return s;
}

KafkaConnectError kafka_connect_error(const std::string& request, const HttpResponse& r) {
    // Kafka Connect answers {"error_code", "message"}; its basic-auth filter and proxies answer plain text or
    // HTML.
    std::string message;
    try {
        json j = json::parse(r.body);
        if (j.is_object()) message = json_string(j, "message");
    } catch (const json::parse_error&) {
        if (r.body.find("<html") != std::string::npos || r.body.find("<HTML") != std::string::npos) {
            auto open = r.body.find("<title>");
            auto close = r.body.find("</title>");
            message = open != std::string::npos && close != std::string::npos && close > open
                          ? r.body.substr(open + 7, close - open - 7)
                          : "an HTML page";
        } else {
            message = first_line(r.body.substr(0, 500));
        }
    }
    long st = r.status;
    bool transient = st == 409 || st == 408 || st == 429 || st >= 500;
    std::string advice = st == 401 || st == 403 ? ": check cdc.kafka_connect.auth"
                         : st == 404            ? ": check the connector name and the worker URL"
                         : transient            ? ": the worker is busy or unhealthy; retried with backoff"
                                                : "";
    return KafkaConnectError(
        request + ": HTTP " + std::to_string(st) + (message.empty() ? "" : " " + message) + advice, st,
        transient, message);
}

std::string trace_first_line(const std::string& trace) {
    return first_line(trace);
}

std::string url_path_segment(std::string_view name) {
    std::string out;
    for (unsigned char c : name) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

KafkaConnectClient::KafkaConnectClient(KafkaConnectOptions options)
    : options_(std::move(options)),
      http_(HttpOptions{
          .timeout = options_.request_timeout, .user = options_.user, .password = options_.password}) {
    if (options_.urls.empty()) throw Error(Kind::Internal, "kafka connect client: no worker URL");
}

HttpResponse KafkaConnectClient::call(std::string_view method, const std::string& path,
                                      const std::string& body) {
    // A worker that does not answer is skipped for the next one of the same cluster; an HTTP answer (even an
    // error) is the cluster's answer.
    std::string errors;
    bool all_refused = true;
    for (std::size_t i = 0; i < options_.urls.size(); ++i) {
        std::size_t index = (current_ + i) % options_.urls.size();
        std::string request = std::string(method) + " " + options_.urls[index] + path;
        try {
            HttpResponse r = http_.request(method, options_.urls[index] + path, body);
            current_ = index;
            if (r.status < 200 || r.status >= 300) throw kafka_connect_error(request, r);
            return r;
        } catch (const HttpTransportError& e) {
            errors += (errors.empty() ? "" : "; ") + std::string(e.what());
            all_refused = all_refused && e.failure() == TransportFailure::ConnectionRefused;
        }
    }
    throw KafkaConnectError("Kafka Connect did not answer: " + errors, 0, true, "", all_refused);
}

KafkaConnectClient KafkaConnectClient::with_timeout(std::chrono::milliseconds limit) const {
    KafkaConnectOptions o = options_;
    o.request_timeout = std::min(o.request_timeout, limit);
    KafkaConnectClient copy(std::move(o));
    copy.current_ = current_;
    return copy;
}

json KafkaConnectClient::server_info() {
    HttpResponse r = call("GET", "/");
    return parse_body(r, "GET " + url() + "/");
}

std::vector<std::string> KafkaConnectClient::connectors() {
    std::string what = "GET " + url() + "/connectors";
    json j = parse_body(call("GET", "/connectors"), what);
    std::vector<std::string> out;
    if (j.is_array()) {
        for (const auto& n : j)
            if (n.is_string()) out.push_back(n.get<std::string>());
    } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
    } else {
        throw KafkaConnectError(what + ": expected a list of connector names", 200, false, "");
    }
    return out;
}

KafkaConnectStatus KafkaConnectClient::status(const std::string& name) {
    std::string path = "/connectors/" + url_path_segment(name) + "/status";
    HttpResponse r = call("GET", path);
    return parse_connector_status(parse_body(r, "GET " + url() + path), "GET " + url() + path);
}

void KafkaConnectClient::pause(const std::string& name) {
    call("PUT", "/connectors/" + url_path_segment(name) + "/pause");
}

void KafkaConnectClient::resume(const std::string& name) {
    call("PUT", "/connectors/" + url_path_segment(name) + "/resume");
}

RestartOutcome KafkaConnectClient::restart(const std::string& name, RestartOptions options) {
    std::string path = "/connectors/" + url_path_segment(name) + "/restart";
    bool params = options.include_tasks || options.only_failed;
    if (params)
        path += std::string("?includeTasks=") + (options.include_tasks ? "true" : "false") +
                "&onlyFailed=" + (options.only_failed ? "true" : "false");
    HttpResponse r = call("POST", path);
    RestartOutcome out;
    if (r.status == 202 && !r.body.empty())
        out.status = parse_connector_status(parse_body(r, "POST " + url() + path), "POST " + url() + path);
    out.parameters_honoured = !params || r.status == 202;
    return out;
}

void KafkaConnectClient::restart_task(const std::string& name, int task) {
    call("POST", "/connectors/" + url_path_segment(name) + "/tasks/" + std::to_string(task) + "/restart");
}

std::optional<json> KafkaConnectClient::offsets(const std::string& name) {
    std::string path = "/connectors/" + url_path_segment(name) + "/offsets";
    try {
        json j = parse_body(call("GET", path), "GET " + url() + path);
        if (j.is_object() && j.contains("offsets")) return j["offsets"];
        return j;
    } catch (const KafkaConnectError& e) {
        if (e.endpoint_unsupported()) return std::nullopt;
        throw;
    }
}

std::string KafkaConnectInfo::config_value(const std::string& key) const {
    auto it = config.find(key);
    return it != config.end() && it->is_string() ? it->get<std::string>() : "";
}

KafkaConnectInfo KafkaConnectClient::info(const std::string& name) {
    std::string path = "/connectors/" + url_path_segment(name);
    std::string what = "GET " + url() + path;
    json j = parse_body(call("GET", path), what);
    if (!j.is_object()) throw KafkaConnectError(what + ": expected a connector info object", 200, false, "");
    KafkaConnectInfo out;
    out.name = json_string(j, "name");
    out.type = json_string(j, "type");
    if (j.contains("config") && j["config"].is_object()) out.config = j["config"];
    return out;
}

void KafkaConnectClient::stop(const std::string& name) {
    call("PUT", "/connectors/" + url_path_segment(name) + "/stop");
}

namespace {

std::string message_of(const HttpResponse& r) {
    try {
        json j = json::parse(r.body);
        if (j.is_object()) return json_string(j, "message");
    } catch (const json::parse_error&) {
    }
    return first_line(r.body);
}

}  // namespace

std::string KafkaConnectClient::alter_offsets(const std::string& name, const json& offsets) {
    return message_of(call("PATCH", "/connectors/" + url_path_segment(name) + "/offsets",
                           json{{"offsets", offsets}}.dump()));
}

std::string KafkaConnectClient::reset_offsets(const std::string& name) {
    return message_of(call("DELETE", "/connectors/" + url_path_segment(name) + "/offsets"));
}

KafkaConnectFeatures KafkaConnectClient::features(const std::string& name) {
    KafkaConnectFeatures f;
    if (!offsets(name)) {
        f.evidence = "GET /connectors/" + name + "/offsets: 404 HTTP 404 Not Found (older than 3.5)";
        return f;
    }
    f.stop = f.offsets_read = true;
    try {
        call("PATCH", "/connectors/" + url_path_segment(name) + "/offsets", "{}");
        // A 2xx to an empty alteration: a worker that accepts it can alter offsets.
        f.offsets_write = true;
        f.evidence = "PATCH /connectors/" + name + "/offsets {}: accepted";
    } catch (const KafkaConnectError& e) {
        if (e.method_unsupported() || e.endpoint_unsupported()) {
            f.evidence = "PATCH /connectors/" + name + "/offsets: " + std::to_string(e.status()) + " " +
                         e.api_message() + " (3.5: offsets can be read, not altered)";
        } else if (e.status() == 400) {
            f.offsets_write = true;
            f.evidence = "PATCH /connectors/" + name + "/offsets {}: 400 " + e.api_message() + " (3.6+)";
        } else {
            throw;
        }
    }
    return f;
}

}  // namespace nightjar::cdc
