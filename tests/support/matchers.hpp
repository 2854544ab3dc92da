#pragma once
#include <catch2/catch.hpp>
#include <string>

#include "nightjar/core/error.hpp"

namespace nightjar::test {

// Matches a nightjar::Error of `kind` whose message contains `fragment`.
class IsError : public Catch::MatcherBase<Error> {
public:
    IsError(Kind kind, std::string fragment) : kind_(kind), fragment_(std::move(fragment)) {}
    bool match(const Error& e) const override {
        return e.kind() == kind_ && std::string(e.what()).find(fragment_) != std::string::npos;
    }
    std::string describe() const override {
        return "is a " + std::string(kind_name(kind_)) + " error mentioning \"" + fragment_ + "\"";
    }

private:
    Kind kind_;
    std::string fragment_;
};

}  // namespace nightjar::test
