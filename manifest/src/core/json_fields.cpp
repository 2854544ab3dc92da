#include "nightjar/core/json_fields.hpp"

#include <cmath>

namespace nightjar {

using nlohmann::json;

namespace {

// A SAX pass that builds nothing: it tracks where it is (for the JSON pointer of an error) and how deep,
// and stops at the first problem.
class DocumentCheck final : public json::json_sax_t {
public:
    explicit DocumentCheck(std::size_t max_depth) : max_depth_(max_depth) {}
    bool null() override { return value(); }
    bool boolean(bool) override { return value(); }
    bool number_integer(number_integer_t) override { return value(); }
    bool number_unsigned(number_unsigned_t) override { return value(); }
    bool number_float(number_float_t, const string_t&) override { return value(); }
    bool string(string_t&) override { return value(); }
    bool binary(binary_t&) override { return value(); }
    bool start_object(std::size_t) override { return open(false); }
    bool key(string_t& k) override {
        frames_.back().key = k;
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(true); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t position, const std::string& token,
                     const nlohmann::detail::exception& e) override {
        if (e.id == 406)  // number overflow: the lexer read a number no double can hold
            error_ = where() + ": number out of range: " + token.substr(0, 40);
        else
            error_ = "not valid JSON: " + std::string(e.what()) + " (byte " + std::to_string(position) + ")";
        return false;
    }
    const std::string& error() const { return error_; }

private:
    struct Frame {
        bool array = false;
        std::size_t index = 0;  // arrays: the element being read
        std::string key;        // objects: the member being read
    };
    static std::string escape(const std::string& key) {
        if (key.size() > 60) return escape(key.substr(0, 57)) + "...";
        std::string out;
        for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        return out;
    }
    std::string where() const {
        std::string p;
        for (const auto& f : frames_) {
            p += "/" + (f.array ? std::to_string(f.index) : escape(f.key));
            if (p.size() > 160) return p.substr(0, 160) + "...";  // deep enough to say where
        }
        return p.empty() ? "/" : p;
    }
    bool value() {
        if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
        return true;
    }
    bool open(bool array) {
        if (frames_.size() >= max_depth_) {
            error_ = where() + ": nested deeper than " + std::to_string(max_depth_) + " levels";
            return false;
        }
        frames_.push_back({array, 0, ""});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return value();
    }
    std::size_t max_depth_;
    std::vector<Frame> frames_;
    std::string error_;
};

}  // namespace

json parse_json_document(std::string_view text, const std::string& what, Kind kind,
                         JsonParseOptions options) {
    // nlohmann stops at a NUL as if the input ended there: bytes after it would be ignored.
    if (auto nul = text.find('\0'); nul != std::string_view::npos)
        throw Error(kind, what + ": not valid JSON: a NUL byte at byte " + std::to_string(nul) +
                              " (the document must be plain text, all of it)");
    try {
        DocumentCheck check(options.max_depth);
        if (!json::sax_parse(text, &check, json::input_format_t::json, /*strict=*/true,
                             options.ignore_comments))
            throw Error(kind, what + ": " + (check.error().empty() ? "not valid JSON" : check.error()));
        return json::parse(text, nullptr, /*allow_exceptions=*/true, options.ignore_comments);
    } catch (const json::exception& e) {
        throw Error(kind, what + ": not valid JSON: " + e.what());
    }
}

std::string describe_json(const json& j) {
    if (j.is_object()) return "an object";
    if (j.is_array()) return "an array";
    std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

JsonFields::JsonFields(const json& j, std::string what, Kind kind, std::string pointer)
    : j_(j), what_(std::move(what)), kind_(kind), pointer_(std::move(pointer)) {
    if (!j_.is_object())
        throw Error(kind_, what_ + ": " + (pointer_.empty() ? "/" : pointer_) + ": expected an object, got " +
                               describe_json(j_));
}

void JsonFields::fail(std::string_view key, const std::string& message) const {
    throw Error(kind_, what_ + ": " + pointer(key) + ": " + message);
}

bool JsonFields::has(std::string_view key) const {
    return j_.contains(std::string(key));
}

const json& JsonFields::at(std::string_view key) const {
    auto it = j_.find(std::string(key));
    if (it == j_.end()) fail(key, "required field is missing");
    return *it;
}

std::string JsonFields::string(std::string_view key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(key, "expected a string, got " + describe_json(v));
    // "\u0000" decodes to a NUL that every C API would cut the string at: refuse it, never truncate.
    if (v.get_ref<const std::string&>().find('\0') != std::string::npos)
        fail(key, "contains a NUL byte (\\u0000)");
    return v.get<std::string>();
}

std::string JsonFields::string_or(std::string_view key, std::string fallback) const {
    return has(key) ? string(key) : fallback;
}

std::string JsonFields::choice(std::string_view key, std::initializer_list<std::string_view> allowed,
                               std::string fallback) const {
    if (!has(key)) return fallback;
    std::string v = string(key);
    std::string names;
    for (auto a : allowed) {
        if (v == a) return v;
        names += (names.empty() ? "" : "|") + std::string(a);
    }
    fail(key, "expected one of " + names + ", got " + describe_json(at(key)));
}

std::int64_t JsonFields::integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    const json& v = at(key);
    // A float is an integer only when whole and inside int64 (a cast of 1e300 would be undefined).
    bool ok =
        v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                  std::fabs(v.get<double>()) < 9.0e18);
    std::int64_t n =
        ok ? (v.is_number_integer() ? v.get<std::int64_t>() : static_cast<std::int64_t>(v.get<double>())) : 0;
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) ok = false;
    if (!ok || n < min || n > max)
        fail(key, "expected integer " + std::to_string(min) + "-" + std::to_string(max) + ", got " +
                      describe_json(v));
    return n;
}

std::int64_t JsonFields::integer_or(std::string_view key, std::int64_t min, std::int64_t max,
                                    std::int64_t fallback) const {
    return has(key) ? integer(key, min, max) : fallback;
}

double JsonFields::number_or(std::string_view key, double min, double max, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_number() || v.get<double>() < min || v.get<double>() > max)
        fail(key, "expected a number " + describe_json(min) + "-" + describe_json(max) + ", got " +
                      describe_json(v));
    return v.get<double>();
}

std::uint64_t JsonFields::uint64(std::string_view key) const {
    const json& v = at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
        fail(key, "expected a non-negative integer, got " + describe_json(v));
    return v.get<std::uint64_t>();
}

bool JsonFields::boolean_or(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_boolean()) fail(key, "expected true or false, got " + describe_json(v));
    return v.get<bool>();
}

std::vector<std::string> JsonFields::strings_or(std::string_view key,
                                                std::vector<std::string> fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_array()) fail(key, "expected a list of strings, got " + describe_json(v));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string())
            fail(std::string(key) + "/" + std::to_string(i), "expected a string, got " + describe_json(v[i]));
        if (v[i].get_ref<const std::string&>().find('\0') != std::string::npos)
            fail(std::string(key) + "/" + std::to_string(i), "contains a NUL byte (\\u0000)");
        out.push_back(v[i].get<std::string>());
    }
    return out;
}

std::vector<std::string> JsonFields::string_or_strings(std::string_view key,
                                                       std::vector<std::string> fallback) const {
    if (has(key) && at(key).is_string()) return {string(key)};
    return strings_or(key, std::move(fallback));
}

JsonFields JsonFields::object(std::string_view key) const {
    return JsonFields(at(key), what_, kind_, pointer(key));
}

std::optional<JsonFields> JsonFields::optional_object(std::string_view key) const {
    if (!has(key) || at(key).is_null()) return std::nullopt;
    return object(key);
}

const json& JsonFields::array(std::string_view key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "expected a list, got " + describe_json(v));
    return v;
}

JsonFields JsonFields::element(std::string_view key, std::size_t index) const {
    return JsonFields(array(key).at(index), what_, kind_, pointer(key) + "/" + std::to_string(index));
}

void JsonFields::only(std::initializer_list<std::string_view> allowed) const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
        bool known = false;
        for (auto a : allowed) known = known || it.key() == a;
        if (!known) {
            std::string names;
            for (auto a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
            fail(it.key(), "unknown field (expected one of: " + names + ")");
        }
    }
}

}  // namespace nightjar
