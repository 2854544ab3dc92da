#include "nightjar/run/keygen.hpp"

#include <chrono>

#include "nightjar/core/clock.hpp"
#include "nightjar/core/error.hpp"
#include "nightjar/io/secret_file.hpp"

namespace nightjar {

std::string identity_file_text(const io::AgeIdentity& id, const std::string& created_at) {
    return "# created: " + created_at + "\n# public key: " + id.recipient().str() + "\n" + id.secret_str() +
           "\n";
}

io::AgeRecipient run_keygen(const KeygenOptions& options, std::ostream& out) {
    if (options.output.empty())
        throw Error(Kind::Usage, "keygen: no output file: give the path of the identity file to create");
    auto id = io::AgeIdentity::generate();
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    std::string text = identity_file_text(id, rfc3339_utc(now.count()));
    try {
        io::create_secret_file(options.output, text);
    } catch (...) {
        io::wipe_string(text);
        throw;
    }
    io::wipe_string(text);
    auto recipient = id.recipient();
    out << "Public key: " << recipient.str() << "\n";
    return recipient;
}

}  // namespace nightjar
