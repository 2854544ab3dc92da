#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "nightjar/core/process.hpp"
#include "nightjar/io/age.hpp"
#include "nightjar/run/keygen.hpp"
#include "support/matchers.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
using test::IsError;

TEST_CASE("keygen: an identity file age reads, mode 0600, and the recipient printed", "[keygen]") {
    test::TempDir dir;
    auto key = dir / "restore.key";
    std::ostringstream out;
    auto recipient = run_keygen({.output = key}, out);
    CHECK(out.str() == "Public key: " + recipient.str() + "\n");
    struct stat st {};
    REQUIRE(::stat(key.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    auto text = test::read_file(key);
    CHECK(text.rfind("# created: 20", 0) == 0);
    CHECK(text.find("\n# public key: " + recipient.str() + "\n") != std::string::npos);
    CHECK(text.find("AGE-SECRET-KEY-1") != std::string::npos);
    // The secret is only in the file, never in what was printed.
    CHECK(out.str().find("AGE-SECRET-KEY") == std::string::npos);
    // age-keygen -y agrees on the public key; age -r encrypts to it and age -d -i opens it with our file.
    auto y = run_capture({"age-keygen", "-y", key.string()});
    INFO(y.err);
    REQUIRE(y.status == 0);
    CHECK(y.out == recipient.str() + "\n");
    test::write_file(dir / "plain", "restore me");
    auto enc =
        run_capture({"age", "-r", recipient.str(), "-o", (dir / "c.age").string(), (dir / "plain").string()});
    REQUIRE(enc.status == 0);
    auto dec = run_capture({"age", "-d", "-i", key.string(), (dir / "c.age").string()});
    INFO(dec.err);
    CHECK(dec.status == 0);
    CHECK(dec.out == "restore me");
    // And our own reader of identity files takes it.
    auto ids = io::read_identity_file(key);
    REQUIRE(ids.size() == 1);
    CHECK(ids[0].recipient().str() == recipient.str());
}

TEST_CASE("keygen: never overwrites an identity, needs an output path", "[keygen]") {
    test::TempDir dir;
    auto key = dir / "k";
    std::ostringstream out;
    run_keygen({.output = key}, out);
    auto before = test::read_file(key);
    std::ostringstream again;
    CHECK_THROWS_MATCHES(run_keygen({.output = key}, again), Error, IsError(Kind::Storage, "already exists"));
    CHECK(test::read_file(key) == before);
    CHECK(again.str().empty());
    CHECK_THROWS_MATCHES(run_keygen({}, again), Error, IsError(Kind::Usage, "no output file"));
    // Two keys differ.
    std::ostringstream other;
    auto r2 = run_keygen({.output = dir / "k2"}, other);
    CHECK(other.str() != out.str());
    // The file is exactly identity_file_text() of its key.
    auto text = test::read_file(dir / "k2");
    auto secret_at = text.find("AGE-SECRET-KEY-1");
    REQUIRE(secret_at != std::string::npos);
    auto secret_line = text.substr(secret_at);
    auto id = io::AgeIdentity::parse(secret_line.substr(0, secret_line.size() - 1));
    CHECK(id.recipient().str() == r2.str());
    auto created = text.substr(11, text.find('\n') - 11);
    CHECK(identity_file_text(id, created) == text);
}
