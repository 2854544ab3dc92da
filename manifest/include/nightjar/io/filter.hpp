#pragma once
// Filters that observe or transform bytes in flight, and the Reader/Writer adapters that run them.
#include <memory>
#include <vector>

#include "nightjar/io/stream.hpp"

namespace nightjar::io {

class Filter {
public:
    virtual ~Filter() = default;
    // An observer returns `in`; a transformer returns a view of `scratch`.
    virtual Bytes process(Bytes in, std::vector<std::byte>& scratch) = 0;
    // End of stream: a transformer flushes what it still holds (a compressor's trailer).
    virtual Bytes finish(std::vector<std::byte>&) { return {}; }
};

class FilterChain {
public:
    // Results are read from the returned handle: `auto& sha = chain.add<Sha256Filter>(); ... sha.hex()`.
    template <typename F, typename... Args>
    F& add(Args&&... args) {
        auto filter = std::make_unique<F>(std::forward<Args>(args)...);
        F& ref = *filter;
        filters_.push_back(std::move(filter));
        scratch_.emplace_back();
        return ref;
    }
    // Runs `in` through every filter; the result stays valid until the next call.
    Bytes process(Bytes in);
    // Flushes every filter in order; `sink` receives each flushed piece after the filters behind it.
    template <typename Sink>
    void finish(Sink&& sink) {
        for (std::size_t i = 0; i < filters_.size(); ++i) {
            Bytes out = filters_[i]->finish(scratch_[i]);
            for (std::size_t j = i + 1; j < filters_.size() && !out.empty(); ++j)
                out = filters_[j]->process(out, scratch_[j]);
            if (!out.empty()) sink(out);
        }
    }
    bool empty() const { return filters_.empty(); }

private:
    std::vector<std::unique_ptr<Filter>> filters_;
    std::vector<std::vector<std::byte>> scratch_;
};

// Pushes everything through the chain into `next`; finish() flushes the chain and finishes `next`.
class FilteredWriter final : public Writer {
public:
    FilteredWriter(FilterChain& chain, Writer& next) : chain_(chain), next_(next) {}
    void write(Bytes data) override;
    void finish() override;

private:
    FilterChain& chain_;
    Writer& next_;
};

// Pulls from `src` through the chain; at end of stream the chain is finished exactly once.
class FilteredReader final : public Reader {
public:
    FilteredReader(Reader& src, FilterChain& chain) : src_(src), chain_(chain) {}
    std::size_t read(MutableBytes buf) override;

private:
    Reader& src_;
    FilterChain& chain_;
    std::vector<std::byte> pending_;
    std::size_t pending_pos_ = 0;
    bool finished_ = false;
};

}  // namespace nightjar::io
