#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "nightjar/core/error.hpp"
#include "support/commands.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;

TEST_CASE("exit codes are distinct per kind and match the README table", "[error]") {
    const std::vector<Kind> kinds{Kind::Internal,      Kind::Usage,     Kind::SourceUnavailable,
                                  Kind::Verification,  Kind::LockHeld,  Kind::Partial,
                                  Kind::RestoreFailed, Kind::CdcResume, Kind::Storage};
    std::set<int> codes;
    for (Kind k : kinds) codes.insert(exit_code(k));
    CHECK(codes.size() == kinds.size());
    CHECK(exit_code(Kind::Config) == exit_code(Kind::Usage));
    CHECK(exit_code(Kind::Interrupted, 2) == 130);
    CHECK(exit_code(Kind::Interrupted, 15) == 143);

    // README: "| 4 | verification | ..." rows; every documented code maps back to the kind it names.
    std::string readme = test::read_file(test::source_dir() / "README.md");
    std::regex row(R"(\|\s*(\d+)\s*\|\s*`([a-z-]+)`)");
    int rows = 0;
    for (std::sregex_iterator it(readme.begin(), readme.end(), row), end; it != end; ++it) {
        int code = std::stoi((*it)[1]);
        std::string name = (*it)[2];
        bool found = false;
        for (Kind k : kinds)
            if (kind_name(k) == name) {
                CHECK(exit_code(k) == code);
                found = true;
            }
        if (name == "config") found = exit_code(Kind::Config) == code;
        CHECK(found);
        ++rows;
    }
    CHECK(rows >= 9);
}
