// A configured passfile that libpq would ignore is named in the error, not "no password supplied".
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "nightjar/components/postgres/connection.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;

TEST_CASE("postgres passfile: missing, group/world readable or not a file is named", "[postgres][passfile]") {
    test::TempDir dir;
    const std::string file = (dir / "pgpass").string();
    SECTION("none configured: nothing to check") {
        CHECK_NOTHROW(postgres::check_passfile("", "x", Kind::SourceUnavailable));
    }
    SECTION("missing") {
        REQUIRE_THROWS_MATCHES(
            postgres::check_passfile(file, "cannot connect to db", Kind::SourceUnavailable), Error,
            IsError(Kind::SourceUnavailable, "the passfile " + file + " (postgres.passfile) does not exist"));
    }
    SECTION("group readable (0640) and world readable (0604)") {
        test::write_file(dir / "pgpass", "*:*:*:u:p\n");
        for (mode_t m : {0640, 0604, 0660}) {
            ::chmod(file.c_str(), m);
            REQUIRE_THROWS_MATCHES(postgres::check_passfile(file, "x", Kind::Config), Error,
                                   IsError(Kind::Config, "group or world accessible: chmod 0600 " + file));
        }
        ::chmod(file.c_str(), 0640);
        REQUIRE_THROWS_MATCHES(postgres::check_passfile(file, "x", Kind::Config), Error,
                               IsError(Kind::Config, "has mode 0640"));
    }
    SECTION("0600 and 0400 pass") {
        test::write_file(dir / "pgpass", "*:*:*:u:p\n");
        ::chmod(file.c_str(), 0600);
        CHECK_NOTHROW(postgres::check_passfile(file, "x", Kind::SourceUnavailable));
        ::chmod(file.c_str(), 0400);
        CHECK_NOTHROW(postgres::check_passfile(file, "x", Kind::SourceUnavailable));
    }
    SECTION("a directory") {
        REQUIRE_THROWS_MATCHES(postgres::check_passfile(dir.path().string(), "x", Kind::SourceUnavailable),
                               Error, IsError(Kind::SourceUnavailable, "is not a regular file"));
    }
}
