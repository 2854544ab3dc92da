#include "nightjar/core/error.hpp"

#include <cerrno>
#include <cstring>

namespace nightjar {

int exit_code(Kind kind, int signal) noexcept {
    switch (kind) {
        case Kind::Internal:
            return 1;
        case Kind::Usage:
        case Kind::Config:
            return 2;
        case Kind::SourceUnavailable:
            return 3;
        case Kind::Verification:
            return 4;
        case Kind::LockHeld:
            return 5;
        case Kind::Partial:
            return 6;
        case Kind::RestoreFailed:
            return 7;
        case Kind::CdcResume:
            return 8;
        case Kind::Storage:
            return 9;
        case Kind::Interrupted:
            return 128 + (signal > 0 ? signal : 2);
    }
    return 1;
}

std::string_view kind_name(Kind kind) noexcept {
    switch (kind) {
        case Kind::Usage:
            return "usage";
        case Kind::Config:
            return "config";
        case Kind::SourceUnavailable:
            return "source-unavailable";
        case Kind::Verification:
            return "verification";
        case Kind::LockHeld:
            return "lock-held";
        case Kind::Partial:
            return "partial";
        case Kind::RestoreFailed:
            return "restore-failed";
        case Kind::CdcResume:
            return "cdc-resume";
        case Kind::Storage:
            return "storage";
        case Kind::Interrupted:
            return "interrupted";
        case Kind::Internal:
            return "internal";
    }
    return "internal";
}

void throw_errno(Kind kind, std::string_view what, const std::string& thing) {
    int err = errno;
    throw Error(kind, std::string(what) + ": " + thing + ": " + std::strerror(err));
}

}  // namespace nightjar
