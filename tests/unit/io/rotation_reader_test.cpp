// io::RotationAwareReader: which header an age file is read with, and add_age_recipients' idempotence.
#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "nightjar/io/age.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/io/filter.hpp"
#include "support/matchers.hpp"

using namespace nightjar;
using namespace nightjar::io;
using test::IsError;

namespace {

struct Text final : Reader {
    std::string data;
    std::size_t pos = 0;
    explicit Text(std::string d) : data(std::move(d)) {}
    std::size_t read(MutableBytes buf) override {
        std::size_t n = std::min<std::size_t>({buf.size(), data.size() - pos, 777});
        std::memcpy(buf.data(), data.data() + pos, n);
        pos += n;
        return n;
    }
};

struct Collect final : Writer {
    std::string data;
    void write(Bytes b) override { data.append(as_chars(b)); }
    void finish() override {}
};

std::string encrypt(const std::string& plain, const AgeRecipient& to) {
    FilterChain chain;
    chain.add<AgeEncryptFilter>(std::vector<AgeRecipient>{to});
    Collect out;
    FilteredWriter w(chain, out);
    w.write(as_bytes(plain));
    w.finish();
    return out.data;
}

AgeIdentities only(const AgeIdentity& id) {
    AgeIdentities ids;
    ids.x25519.push_back(id);
    return ids;
}

// Header objects by number.
RotationHeaderSource source(const std::map<unsigned, std::string>& headers,
                            std::vector<unsigned>* asked = nullptr) {
    return [headers, asked](unsigned n) -> std::unique_ptr<Reader> {
        if (asked) asked->push_back(n);
        auto it = headers.find(n);
        return it == headers.end() ? nullptr : std::make_unique<Text>(it->second);
    };
}

std::string decrypt(Reader& age_file, const AgeIdentities& ids) {
    Collect out;
    AgeDecryptWriter dec(ids, out);
    pump(age_file, dec);
    dec.finish();
    return out.data;
}

std::string header_for(const std::string& file, const AgeIdentity& opener, const AgeRecipient& add) {
    Text src(file);
    return add_age_recipients(src, only(opener), {add}).header;
}

}  // namespace

TEST_CASE("rotation-aware reading: own header first, then the first rotation header that opens",
          "[age][rotation]") {
    const std::string plain(200000, 'z');
    AgeIdentity a = AgeIdentity::generate(), b = AgeIdentity::generate(), c = AgeIdentity::generate();
    const std::string file = encrypt(plain, a.recipient());
    const std::string for_b = header_for(file, a, b.recipient());
    REQUIRE_FALSE(for_b.empty());

    SECTION("the artifact's own identity: the artifact as it is, no header object asked for") {
        Text src(file);
        std::vector<unsigned> asked;
        RotationAwareReader r(src, only(a), source({{1, for_b}}, &asked));
        CHECK(decrypt(r, only(a)) == plain);
        CHECK(r.header_used() == 0);
        CHECK(asked.empty());
    }
    SECTION("the added identity: a gap, a header for someone else, then its header") {
        const std::string for_c = header_for(file, a, c.recipient());
        Text src(file);
        RotationAwareReader r(src, only(b), source({{2, for_c}, {5, for_b}}));
        CHECK(decrypt(r, only(b)) == plain);
        CHECK(r.header_used() == 5);
    }
    SECTION("rotation headers exist and none opens: NoMatch says so") {
        Text src(file);
        RotationAwareReader r(src, only(c), source({{1, for_b}}));
        std::vector<std::byte> buf(100);
        CHECK_THROWS_MATCHES(r.read(buf), AgeError, IsError(Kind::Verification, "1 rotation header(s)"));
    }
    SECTION("no rotation header: the decrypter's own NoMatch") {
        Text src(file);
        RotationAwareReader r(src, only(c), source({}));
        CHECK_THROWS_MATCHES(decrypt(r, only(c)), AgeError,
                             IsError(Kind::Verification, "no identity matches"));
    }
    SECTION("a header object with a payload after it is passed over") {
        Text src(file);
        RotationAwareReader r(src, only(b), source({{1, for_b + "x"}, {2, for_b}}));
        CHECK(decrypt(r, only(b)) == plain);
        CHECK(r.header_used() == 2);
    }
}

TEST_CASE("add_age_recipients recognizes the stanzas it wrote", "[age][rotation]") {
    AgeIdentity a = AgeIdentity::generate(), b = AgeIdentity::generate(), c = AgeIdentity::generate();
    const std::string file = encrypt("x", a.recipient());
    Text src(file);
    RotationHeader first = add_age_recipients(src, only(a), {b.recipient(), b.recipient()});
    CHECK(first.added.size() == 1);
    CHECK(first.present.empty());
    Text h1(first.header);
    RotationHeader second = add_age_recipients(h1, only(b), {b.recipient(), c.recipient()});
    REQUIRE(second.added.size() == 1);
    CHECK(second.added[0].key == c.recipient().key);
    REQUIRE(second.present.size() == 1);
    CHECK(second.present[0].key == b.recipient().key);
    Text h2(second.header);
    CHECK(check_age_header_object(h2).size() == 3);
    Text h1_again(first.header);
    RotationHeader none = add_age_recipients(h1_again, only(a), {b.recipient()});
    CHECK(none.header.empty());
    CHECK(none.added.empty());
}
