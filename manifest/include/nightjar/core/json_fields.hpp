#pragma once
// Strict, typed reading of a JSON object with errors that name the JSON pointer of the bad field:
// "config: /postgres/port: expected integer 1-65535, got \"54x2\"".
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nightjar/core/error.hpp"

namespace nightjar {

class JsonFields {
public:
    // `what` prefixes every message ("config", "manifest /b/manifest_x.json"); `kind` is what errors throw.
    JsonFields(const nlohmann::json& j, std::string what, Kind kind, std::string pointer = "");

    bool has(std::string_view key) const;
    std::string pointer(std::string_view key) const { return pointer_ + "/" + std::string(key); }
    const nlohmann::json& raw() const { return j_; }

    std::string string(std::string_view key) const;  // required
    std::string string_or(std::string_view key, std::string fallback) const;
    // One of `allowed`; `fallback` when absent.
    std::string choice(std::string_view key, std::initializer_list<std::string_view> allowed,
                       std::string fallback) const;
    std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max) const;  // required
    std::int64_t integer_or(std::string_view key, std::int64_t min, std::int64_t max,
                            std::int64_t fallback) const;
    double number_or(std::string_view key, double min, double max, double fallback) const;
    std::uint64_t uint64(std::string_view key) const;
    bool boolean_or(std::string_view key, bool fallback) const;
    std::vector<std::string> strings_or(std::string_view key, std::vector<std::string> fallback) const;
    // A string, or a list of strings (`"all"` or `["a","b"]`).
    std::vector<std::string> string_or_strings(std::string_view key, std::vector<std::string> fallback) const;
    JsonFields object(std::string_view key) const;  // required object
    std::optional<JsonFields> optional_object(std::string_view key) const;
    const nlohmann::json& array(std::string_view key) const;            // required array
    JsonFields element(std::string_view key, std::size_t index) const;  // array element that is an object
    // Throws for any key not in `allowed`.
    void only(std::initializer_list<std::string_view> allowed) const;

    [[noreturn]] void fail(std::string_view key, const std::string& message) const;

private:
    const nlohmann::json& at(std::string_view key) const;
    const nlohmann::json& j_;
    std::string what_;
    Kind kind_;
    std::string pointer_;
};

// A short rendering of a JSON value for error messages ("\"54x2\"", "12", "an object").
std::string describe_json(const nlohmann::json& j);

struct JsonParseOptions {
    std::size_t max_depth = 256;   // objects and arrays nested deeper than this are an error, found before
                                   // any tree is built (a deep tree would overflow the stack later)
    bool ignore_comments = false;  // accept // and /* */ comments (configs do)
};

// Total parsing of one JSON document: every byte must belong to it (a NUL byte or anything after the
// document is an error), nesting is bounded, and a number out of range is an error naming its JSON
// pointer. Every failure throws `kind` with `what` in the message; nothing else escapes.
nlohmann::json parse_json_document(std::string_view text, const std::string& what, Kind kind,
                                   JsonParseOptions options = {});

}  // namespace nightjar
