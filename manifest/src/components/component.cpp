#include "nightjar/components/component.hpp"

#include <future>

#include "nightjar/core/error.hpp"

namespace nightjar {

struct RestoreGate::Pending {
    std::size_t index = 0;
    std::future<VerifyOutcome> proof;
};

RestoreGate::RestoreGate(OnProven on_proven) : on_proven_(std::move(on_proven)) {}

// A proof still running is waited for (its thread reads the backup): the gate outlives it.
RestoreGate::~RestoreGate() {
    for (auto& p : pending_)
        if (p->proof.valid()) p->proof.wait();
}

void RestoreGate::record(std::size_t index, const VerifyOutcome& outcome) {
    std::lock_guard lk(m_);
    if (!outcome.ok()) ++failed_;
    if (on_proven_) on_proven_(index, outcome, false);
}

void RestoreGate::prove_beside(std::size_t index, std::function<VerifyOutcome()> proof) {
    auto p = std::make_unique<Pending>();
    p->index = index;
    p->proof = std::async(std::launch::async, std::move(proof));
    std::lock_guard lk(m_);
    pending_.push_back(std::move(p));
}

bool RestoreGate::settle() {
    std::lock_guard lk(m_);
    for (auto& p : pending_) {
        if (!p->proof.valid()) continue;
        const VerifyOutcome v = p->proof.get();  // a proof that could not run throws its error here
        if (!v.ok()) ++failed_;
        if (on_proven_) on_proven_(p->index, v, true);
    }
    return failed_ == 0;
}

void RestoreGate::wait_until_proven() {
    if (!settle()) throw Error(Kind::Verification, "an artifact failed verification");
}

std::size_t RestoreGate::failed() const {
    std::lock_guard lk(m_);
    return failed_;
}

}  // namespace nightjar
