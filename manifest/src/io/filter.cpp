#include "nightjar/io/filter.hpp"

#include <algorithm>
#include <cstring>

namespace nightjar::io {

std::uint64_t pump(Reader& src, Writer& dst) {
    std::vector<std::byte> buf(kChunkSize);
    std::uint64_t total = 0;
    while (std::size_t n = src.read(buf)) {
        dst.write(Bytes(buf.data(), n));
        total += n;
    }
    return total;
}

std::uint64_t drain(Reader& src) {
    NullWriter sink;
    return pump(src, sink);
}

Bytes FilterChain::process(Bytes in) {
    for (std::size_t i = 0; i < filters_.size() && !in.empty(); ++i)
        in = filters_[i]->process(in, scratch_[i]);
    return in;
}

void FilteredWriter::write(Bytes data) {
    Bytes out = chain_.process(data);
    if (!out.empty()) next_.write(out);
}

void FilteredWriter::finish() {
    chain_.finish([this](Bytes out) { next_.write(out); });
    next_.finish();
}

std::size_t FilteredReader::read(MutableBytes buf) {
    while (pending_pos_ == pending_.size()) {
        if (finished_) return 0;
        pending_.clear();
        pending_pos_ = 0;
        std::size_t n = src_.read(buf);
        if (n == 0) {
            chain_.finish([this](Bytes out) { pending_.insert(pending_.end(), out.begin(), out.end()); });
            finished_ = true;
            continue;
        }
        Bytes out = chain_.process(Bytes(buf.data(), n));
        // Observers hand back the caller's own bytes: no copy needed.
        if (out.data() == buf.data() && out.size() == n) return n;
        pending_.assign(out.begin(), out.end());
    }
    std::size_t n = std::min(buf.size(), pending_.size() - pending_pos_);
    std::memcpy(buf.data(), pending_.data() + pending_pos_, n);
    pending_pos_ += n;
    return n;
}

}  // namespace nightjar::io
