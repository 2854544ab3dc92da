#include "nightjar/run/version.hpp"

#include <archive.h>
#include <hiredis.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <zstd.h>

#ifndef NIGHTJAR_GIT_COMMIT
#define NIGHTJAR_GIT_COMMIT "unknown"
#endif

namespace nightjar {

namespace {

// PQlibVersion(): 150010 -> "15.10" (and 90624 -> "9.6.24").
std::string libpq_version() {
    int v = PQlibVersion();
    if (v >= 100000) return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace

std::string version_text(std::string_view program) {
    std::string out =
        std::string(program) + " " + NIGHTJAR_VERSION + " (commit " + NIGHTJAR_GIT_COMMIT + ")\n";
    out += "libpq " + libpq_version() + "\n";
    // hiredis has no runtime version call: these are the headers it was built against (the soname pins it).
    out += "hiredis " + std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "." +
           std::to_string(HIREDIS_PATCH) + "\n";
    out += std::string(archive_version_details()) + "\n";
    out += std::string("libzstd ") + ZSTD_versionString() + "\n";
    out += std::string(OpenSSL_version(OPENSSL_VERSION));
    return out;
}

}  // namespace nightjar
