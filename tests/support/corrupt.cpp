#include "support/corrupt.hpp"

#include <fstream>
#include <stdexcept>

#include "support/temp_dir.hpp"

namespace nightjar::test {

void flip_byte(const std::filesystem::path& file, std::int64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + file.string());
    auto size = static_cast<std::int64_t>(std::filesystem::file_size(file));
    std::int64_t pos = offset < 0 ? size + offset : offset;
    if (pos < 0 || pos >= size) throw std::runtime_error("flip_byte: offset outside " + file.string());
    f.seekg(pos);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(~c);
    f.seekp(pos);
    f.write(&c, 1);
}

void truncate_to(const std::filesystem::path& file, std::uint64_t size) {
    std::filesystem::resize_file(file, size);
}

void edit_manifest(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(read_file(file));
    edit(j);
    write_file(file, j.dump(2));
}

}  // namespace nightjar::test
