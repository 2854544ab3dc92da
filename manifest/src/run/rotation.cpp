#include "nightjar/run/rotation.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "nightjar/core/log.hpp"
#include "nightjar/io/age_rotation.hpp"
#include "nightjar/repo/repository.hpp"

namespace nightjar {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Enough to hold any age header (1 MiB) and the newline after it: all a rotation reads of an artifact.
constexpr std::uint64_t kHeaderReadBytes = (std::uint64_t{1} << 20) + 1;

// The numbers n of the `<name>.age-header.<n>` among `entries` (one directory's listing), ascending.
std::vector<unsigned> header_numbers(const std::vector<Entry>& entries, const std::string& name) {
    const std::string stem = name + ".age-header.";
    std::vector<unsigned> out;
    for (const auto& e : entries) {
        if (e.is_dir || !e.name.starts_with(stem)) continue;
        const std::string digits = e.name.substr(stem.size());
        if (digits.empty() || digits.size() > 3 || digits[0] == '0' ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        out.push_back(static_cast<unsigned>(std::stoul(digits)));
    }
    std::sort(out.begin(), out.end());
    return out;
}

// One object's plan: the header object to write and its bytes.
struct Planned {
    RotatedObject report;
    std::string text;  // the new header ("" when nothing is added)
};

class Rotation {
public:
    Rotation(Storage& storage, const AddRecipientRequest& request)
        : storage_(storage), request_(request), repo_(storage) {
        repo_.set_keys({.identities = request.identities,
                        .trusted_hosts = request.trusted_hosts,
                        .allow_unsigned = false});
    }

    RotationReport run() {
        RotationReport report{.dry_run = request_.dry_run, .backups = {}};
        for (const BackupRef& ref : chosen()) {
            report.backups.push_back(rotate(ref));
            if (report.backups.back().ok())
                log::info(report.summary(report.backups.back()));
            else
                log::error(report.summary(report.backups.back()));
        }
        return report;
    }

private:
    Storage& storage_;
    const AddRecipientRequest& request_;
    RepositoryReader repo_;
    std::map<std::string, std::vector<Entry>> listings_;  // directory -> its entries, listed once

    std::vector<BackupRef> chosen() {
        std::vector<BackupRef> out;
        if (request_.all) {
            std::size_t plain = 0;
            for (auto& ref : repo_.list()) {
                if (ref.encrypted())
                    out.push_back(std::move(ref));
                else
                    ++plain;
            }
            if (plain > 0)
                log::info("encryption add-recipient: ", plain,
                          " backup(s) without encryption passed over (nothing to add a recipient to)");
            if (out.empty())
                throw Error(Kind::Usage, "encryption add-recipient: no encrypted backup in " +
                                             storage_.describe(".") + ": nothing to add a recipient to");
            return out;
        }
        for (const auto& id : request_.backups) {
            BackupRef ref = [&] {
                try {
                    return repo_.find(id);
                } catch (const Error& e) {
                    throw Error(Kind::Usage, std::string("encryption add-recipient: ") + e.what());
                }
            }();
            if (!ref.encrypted())
                throw Error(Kind::Usage, "encryption add-recipient: backup " + ref.id +
                                             " is not encrypted: there is no header to add a recipient to");
            out.push_back(std::move(ref));
        }
        return out;
    }

    const std::vector<Entry>& listing(const fs::path& dir) {
        const std::string key = dir.empty() ? "." : dir.string();
        auto it = listings_.find(key);
        if (it == listings_.end()) it = listings_.emplace(key, storage_.list(key)).first;
        return it->second;
    }

    RotatedBackup rotate(const BackupRef& ref) {
        RotatedBackup out{.id = ref.id, .objects = {}, .error = {}, .error_kind = Kind::Internal};
        std::vector<Planned> plan;
        try {
            if (ref.index.empty())
                throw Error(Kind::Verification,
                            "backup " + ref.id +
                                ": encrypted and without an index (an interrupted publish, or written before "
                                "indexes): its artifacts are not known without trusting its manifest alone");
            BackupIndex idx = repo_.load_index(ref, !request_.trusted_hosts.empty());
            // Recipients of the original headers are known by fingerprint only (their stanzas are random).
            std::vector<io::AgeRecipient> fresh;
            std::vector<std::string> original;
            for (const auto& r : request_.recipients) {
                const bool in_index = std::find(idx.recipients.begin(), idx.recipients.end(),
                                                io::key_fingerprint(r.key)) != idx.recipients.end();
                if (!in_index)
                    fresh.push_back(r);
                else if (std::find(original.begin(), original.end(), r.str()) == original.end())
                    original.push_back(r.str());
            }
            for (const auto& o : idx.artifacts) {
                if (!o.path.starts_with(ref.id + "/") || !is_safe_relative(o.path))
                    throw Error(Kind::Verification,
                                "backup " + ref.id + ": its index lists " + o.path +
                                    ", which is not inside the backup: the index was edited");
                plan.push_back(plan_object(ref.id, o.path, fresh, original));
            }
            plan.push_back(plan_object(ref.id, ref.manifest, fresh, original));
        } catch (const Error& e) {
            if (e.kind() == Kind::Interrupted) throw;
            out.error = e.what();
            out.error_kind = e.kind();
            return out;
        }
        for (auto& p : plan) {
            if (!p.text.empty() && !request_.dry_run) {
                try {
                    write_header(p.report.header, p.text);
                } catch (const Error& e) {
                    out.error = "backup " + ref.id + ": " + p.report.object + ": " + e.what();
                    out.error_kind = e.kind();
                    out.objects.push_back(std::move(p.report));
                    return out;
                }
            }
            out.objects.push_back(std::move(p.report));
        }
        return out;
    }

    // The newest header of `path` that the identities open, re-wrapped for what it lacks.
    Planned plan_object(const std::string& id, const std::string& path,
                        const std::vector<io::AgeRecipient>& add, const std::vector<std::string>& original) {
        const fs::path p(path);
        std::vector<unsigned> numbers = header_numbers(listing(p.parent_path()), p.filename().string());
        Planned out{.report = {.object = path, .header = {}, .added = {}, .present = original}, .text = {}};
        const std::string where = "backup " + id + ": " + storage_.describe(path);
        if (add.empty()) return out;
        const unsigned next = numbers.empty() ? 1 : numbers.back() + 1;
        std::optional<io::RotationHeader> rewrapped;
        std::string passed_over;  // rotation headers the identities do not open, for the message
        for (auto n = numbers.rbegin(); n != numbers.rend() && !rewrapped; ++n) {
            const std::string name = io::age_header_object_name(path, *n);
            RegularFile file = storage_.open_regular(name);
            if (!file.reader) continue;
            try {
                rewrapped = io::add_age_recipients(*file.reader, request_.identities, add);
            } catch (const io::AgeError&) {
                passed_over += " " + fs::path(name).filename().string();
            }
        }
        if (!rewrapped) {
            RegularFile file = storage_.open_regular(path);
            if (file.missing) throw Error(Kind::Verification, where + ": the file is missing");
            if (!file.reader)
                throw Error(Kind::Verification, where + ": is " + file.not_regular + ", not a regular file");
            try {
                rewrapped = io::add_age_recipients(*file.reader, request_.identities, add);
            } catch (const io::AgeError& e) {
                throw io::AgeError(
                    e.failure(),
                    where + ": cannot open its age header" +
                        (passed_over.empty() ? "" : " (nor its rotation headers" + passed_over + ")") +
                        " with the given identity: " + e.what());
            }
        }
        for (const auto& r : rewrapped->present) out.report.present.push_back(r.str());
        if (rewrapped->header.empty()) return out;
        if (next > io::kMaxRotationHeaders)
            throw Error(Kind::Config, where + ": already has " + std::to_string(numbers.size()) +
                                          " rotation headers, the most readers try (" +
                                          std::to_string(io::kMaxRotationHeaders) +
                                          "): take a new backup encrypted to the new recipients instead");
        for (const auto& r : rewrapped->added) out.report.added.push_back(r.str());
        out.report.header = io::age_header_object_name(path, next);
        out.text = std::move(rewrapped->header);
        return out;
    }

    void write_header(const std::string& name, const std::string& text) {
        auto w = storage_.open_write(name, {.atomic = true, .sync = true, .create_only = true});
        w->write(io::as_bytes(text));
        w->finish();
        if (storage_.capabilities().directory_sync)
            storage_.sync_dir(fs::path(name).parent_path().empty() ? fs::path(".")
                                                                   : fs::path(name).parent_path());
    }
};

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

std::size_t RotatedBackup::headers() const {
    return static_cast<std::size_t>(std::count_if(objects.begin(), objects.end(),
                                                  [](const RotatedObject& o) { return !o.header.empty(); }));
}

bool RotationReport::ok() const {
    return std::all_of(backups.begin(), backups.end(), [](const RotatedBackup& b) { return b.ok(); });
}

int RotationReport::exit_code() const {
    for (const auto& b : backups)
        if (!b.ok()) return nightjar::exit_code(b.error_kind);
    return 0;
}

std::string RotationReport::summary(const RotatedBackup& b) const {
    if (!b.ok())
        return "encryption add-recipient: " + b.error +
               (b.objects.empty() ? ": nothing was written for backup " + b.id
                                  : ": backup " + b.id + " is rotated only in part (run it again)");
    std::vector<std::string> added, present;
    for (const auto& o : b.objects) {
        for (const auto& r : o.added)
            if (std::find(added.begin(), added.end(), r) == added.end()) added.push_back(r);
        for (const auto& r : o.present)
            if (std::find(present.begin(), present.end(), r) == present.end()) present.push_back(r);
    }
    const std::size_t n = b.headers();
    std::string line = "backup " + b.id + ": ";
    if (n == 0)
        line += "nothing to do: every object already has " + join(present);
    else
        line += std::string(dry_run ? "would write " : "wrote ") + std::to_string(n) + " of " +
                std::to_string(b.objects.size()) + " rotation header(s) adding " + join(added);
    if (n > 0 && !present.empty()) line += "; already there (skipped): " + join(present);
    return line;
}

json RotationReport::to_json() const {
    json j{{"dry_run", dry_run}, {"ok", ok()}, {"backups", json::array()}};
    for (const auto& b : backups) {
        json jb{{"id", b.id}, {"ok", b.ok()}, {"headers", b.headers()}, {"objects", json::array()}};
        if (!b.ok()) jb["error"] = b.error;
        for (const auto& o : b.objects)
            jb["objects"].push_back(
                {{"object", o.object}, {"header", o.header}, {"added", o.added}, {"present", o.present}});
        j["backups"].push_back(std::move(jb));
    }
    return j;
}

RotationReport add_recipients(Storage& storage, const AddRecipientRequest& request) {
    if (request.recipients.empty())
        throw Error(
            Kind::Usage,
            "encryption add-recipient: no recipient to add: pass --recipient age1… or --recipients-file");
    if (!request.all && request.backups.empty())
        throw Error(Kind::Usage, "encryption add-recipient: which backups? pass --backup ID or --all");
    if (request.all && !request.backups.empty())
        throw Error(Kind::Usage, "encryption add-recipient: --backup and --all exclude each other");
    if (request.identities.x25519.empty())
        throw Error(
            Kind::Config,
            "encryption add-recipient: no identity to open the existing headers: pass --identity FILE "
            "or set encryption.identity_file (an AGE-SECRET-KEY-1… file, mode 0600)");
    Lock reading = lock_for_reading(storage);
    return Rotation(storage, request).run();
}

}  // namespace nightjar
