// The streamed PostgreSQL restore without a server: a stand-in pg_restore (a shell script) records each run's
// arguments, list and stdin, so the test can check what every run was fed. The archive is synthetic; readers
// hand it out in awkward piece sizes, so block headers straddle pieces.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "nightjar/components/postgres/streamed_restore.hpp"
#include "nightjar/io/stream.hpp"
#include "support/matchers.hpp"
#include "support/pg_archive.hpp"
#include "support/temp_dir.hpp"

using namespace nightjar;
namespace fs = std::filesystem;

namespace {

// Hands out a string in pieces of 1, 2, 3, 5, 11 and 64 bytes, in turn: many block headers straddle pieces.
class AwkwardReader final : public io::Reader {
public:
    explicit AwkwardReader(const std::string& s) : s_(s) {}
    std::size_t read(io::MutableBytes buf) override {
        static constexpr std::size_t sizes[] = {1, 2, 3, 5, 11, 64};
        std::size_t n = std::min({buf.size(), sizes[turn_++ % 6], s_.size() - pos_});
        std::memcpy(buf.data(), s_.data() + pos_, n);
        pos_ += n;
        return n;
    }

private:
    const std::string& s_;
    std::size_t pos_ = 0;
    std::size_t turn_ = 0;
};

struct Table {
    int table_id, data_id, index_id;
    std::string block;  // the whole data block as archived
};

// Tables of assorted sizes, each with TABLE (pre-data), TABLE DATA (data) and INDEX (post-data) entries, plus
// a SEQUENCE SET (data, no block) and a FK CONSTRAINT (post-data, depends on two tables).
struct Archive {
    std::string bytes;
    std::size_t toc_end = 0;
    std::vector<Table> tables;
    int sequence_set = 0, foreign_key = 0;
};

Archive make_archive(const std::vector<std::size_t>& row_counts) {
    Archive a;
    const int n = static_cast<int>(row_counts.size());
    test::ArchiveBytes b;
    b.header(14, 3 * n + 2);
    for (int i = 0; i < n; ++i) {
        Table t{10 + i, 100 + i, 200 + i, {}};
        b.entry(t.table_id, "TABLE", "s", ("t" + std::to_string(i)).c_str(), 3, 2, {});
        a.tables.push_back(t);
    }
    for (auto& t : a.tables) b.entry(t.data_id, "TABLE DATA", "s", "t", 1, 3, {t.table_id});
    a.sequence_set = 300;
    b.entry(a.sequence_set, "SEQUENCE SET", "s", "seq", 3, 3, {});
    for (auto& t : a.tables) b.entry(t.index_id, "INDEX", "s", "i", 3, 4, {t.table_id});
    a.foreign_key = 400;
    b.entry(a.foreign_key, "FK CONSTRAINT", "s", "fk", 3, 4, {a.tables[0].table_id, a.tables[1].table_id});
    a.toc_end = b.b.size();
    for (int i = 0; i < n; ++i) {
        std::vector<std::string> rows;
        for (std::size_t r = 0; r < row_counts[i]; ++r)
            rows.push_back(std::to_string(r) + "\trow of t" + std::to_string(i) + "\n");
        test::ArchiveBytes block;
        block.block(a.tables[i].data_id, rows);
        a.tables[i].block = block.b;
        b.b += block.b;
    }
    a.bytes = b.b;
    return a;
}

// One recorded pg_restore run.
struct Run {
    std::vector<std::string> args;
    std::vector<int> list;
    std::string in;
};

std::vector<Run> runs_in(const fs::path& dir) {
    std::vector<Run> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".args") continue;
        Run r;
        std::istringstream args(test::read_file(e.path()));
        for (std::string line; std::getline(args, line);) r.args.push_back(line);
        fs::path list = fs::path(e.path()).replace_extension(".list");
        if (fs::exists(list)) {
            std::istringstream ids(test::read_file(list));
            for (int id; ids >> id;) r.list.push_back(id);
        }
        fs::path in = fs::path(e.path()).replace_extension(".in");
        if (fs::exists(in)) r.in = test::read_file(in);
        out.push_back(std::move(r));
    }
    return out;
}

bool has_arg(const Run& r, const std::string& prefix) {
    return std::any_of(r.args.begin(), r.args.end(),
                       [&](const std::string& a) { return a.rfind(prefix, 0) == 0; });
}

}  // namespace

TEST_CASE("a streamed restore feeds every block to exactly one pg_restore, whole and in order",
          "[postgres][restore]") {
    test::TempDir dir;
    const fs::path out = dir.path() / "runs";
    fs::create_directories(out);
    // The stand-in pg_restore: records its arguments, the list it was given and its stdin.
    const std::string script =
        "r=$(mktemp \"$OUT/run-XXXXXX\"); printf '%s\\n' \"$@\" > \"$r.args\"; "
        "for a in \"$@\"; do case $a in --use-list=*) cp \"${a#--use-list=}\" \"$r.list\";; esac; done; "
        "cat > \"$r.in\"";
    // Three big tables around small ones; a batch gathers blocks up to 300 bytes.
    const Archive archive = make_archive({40, 1, 0, 2, 60, 3, 50});
    const int jobs = GENERATE(1, 2, 3);
    CAPTURE(jobs);
    postgres::StreamedPgRestore how{.argv = {"/bin/sh", "-c", script, "pg_restore"},
                                    .spawn = {.env = {"OUT=" + out.string()}},
                                    .jobs = jobs,
                                    .what = "artifact x/db.zst",
                                    .head_limit = 1 << 20,
                                    .batch_bytes = 300,
                                    .reopen = [&] { return std::make_unique<AwkwardReader>(archive.bytes); },
                                    .on_head = nullptr,
                                    .after_batch = nullptr};
    bool head_seen = false;
    how.on_head = [&](const postgres::PgArchive& a) {
        head_seen = true;
        CHECK(a.toc_end == archive.toc_end);
        CHECK(fs::is_empty(out));  // nothing has run yet
    };
    std::vector<std::vector<int>> batches;
    std::mutex batches_m;
    how.after_batch = [&](const std::vector<int>& ids) {
        std::lock_guard lk(batches_m);
        batches.push_back(ids);
    };

    AwkwardReader content(archive.bytes);
    auto steps = postgres::streamed_pg_restore(content, how);
    CHECK(head_seen);
    REQUIRE(steps.size() >= 3);
    CHECK(steps.front().name == "pre-data");
    CHECK(steps.back().name == "post-data");
    for (const auto& s : steps) CHECK(s.exit_code == 0);

    const std::string head = archive.bytes.substr(0, archive.toc_end);
    std::map<int, const Table*> table_of_data;
    for (const auto& t : archive.tables) table_of_data[t.data_id] = &t;
    std::multiset<int> fed;           // data entries over all data runs
    std::set<int> early, final_post;  // post-data entries run early, and in the final run's list
    for (const Run& r : runs_in(out)) {
        if (has_arg(r, "--section=pre-data") || has_arg(r, "--section=post-data")) {
            CHECK(r.in.empty());  // from the head file, not stdin
            if (has_arg(r, "--section=post-data") && !r.list.empty()) {
                auto& into = has_arg(r, "--jobs=") || jobs == 1 ? final_post : early;
                into.insert(r.list.begin(), r.list.end());
            }
            continue;
        }
        // A data run: stdin is the head, then the blocks of its list in order; entries without a block
        // (the sequence position) are listed but send nothing.
        std::string expected = head;
        for (int id : r.list) {
            fed.insert(id);
            if (table_of_data.count(id)) expected += table_of_data[id]->block;
        }
        CHECK(r.in == expected);
    }
    std::multiset<int> all_data{archive.sequence_set};
    for (const auto& t : archive.tables) all_data.insert(t.data_id);
    CHECK(fed == all_data);      // every data entry exactly once
    std::multiset<int> batched;  // after_batch is told the blocks each batch loaded
    for (const auto& b : batches) batched.insert(b.begin(), b.end());
    std::multiset<int> blocks = all_data;
    blocks.erase(archive.sequence_set);
    CHECK(batched == blocks);

    // With more than one job a table's index is built as soon as its data is in; the final post-data run
    // lists everything else and never what ran early. The foreign key always waits for the final run.
    if (jobs > 1) {
        CHECK(early.size() == archive.tables.size());
        for (const auto& t : archive.tables) CHECK(early.count(t.index_id) == 1);
        for (int id : early) CHECK(final_post.count(id) == 0);
        CHECK(final_post.count(archive.foreign_key) == 1);
    } else {
        CHECK(early.empty());
    }
}

TEST_CASE("a streamed restore of an archive cut inside a block fails naming the cut", "[postgres][restore]") {
    test::TempDir dir;
    const Archive archive = make_archive({30, 30});
    const std::string cut = archive.bytes.substr(0, archive.bytes.size() - 50);
    postgres::StreamedPgRestore how{.argv = {"/bin/sh", "-c", "cat > /dev/null", "pg_restore"},
                                    .spawn = {},
                                    .jobs = 2,
                                    .what = "artifact x/db.zst",
                                    .head_limit = 1 << 20,
                                    .batch_bytes = 300,
                                    .reopen = [&] { return std::make_unique<AwkwardReader>(cut); },
                                    .on_head = nullptr,
                                    .after_batch = nullptr};
    AwkwardReader content(cut);
    REQUIRE_THROWS_MATCHES(postgres::streamed_pg_restore(content, how), Error,
                           test::IsError(Kind::Verification,
                                         "artifact x/db.zst: not a readable pg_dump archive: "
                                         "the archive is cut short inside the data block"));
}
