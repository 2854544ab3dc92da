#pragma once
// What verifying one artifact found.
#include <string>
#include <string_view>

namespace nightjar {

enum class VerifyStatus { Ok, Missing, SizeMismatch, DigestMismatch, FormatInvalid };
std::string_view verify_status_name(VerifyStatus s);

struct VerifyOutcome {
    VerifyStatus status = VerifyStatus::Ok;
    std::string detail;  // what exactly is wrong, empty when Ok
    bool ok() const { return status == VerifyStatus::Ok; }
};

}  // namespace nightjar
