#pragma once
// safetensors, read and write, to the format's specification
// (https://github.com/huggingface/safetensors, safetensors/src/tensor.rs):
//   u64 little-endian header size N (at most 100,000,000), N bytes of UTF-8 JSON, data.
//   JSON: {"__metadata__": {str: str}, name: {"dtype": D, "shape": [..], "data_offsets": [b, e]}}
//   Offsets are relative to the data buffer, e exclusive; sorted by offset the tensors tile
//   the buffer exactly (no gaps, no overlap) and the buffer ends at the end of the file;
//   e - b == numel * sizeof(dtype); shape products must not overflow.
// The whole header is validated when the file is opened, before any data is read; the
// reader then copies one tensor at a time into caller memory (no mapping, no second copy
// of the file in memory). Files already in memory (fuzzing, tests) take the same path.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vitqk::io {

enum class DType { F32, F16, BF16, F64 };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

class SafeTensorsReader {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    int64_t numel;
    uint64_t begin, end;  // relative to the data buffer
  };

  // Opens and validates; throws vitqk::Error "<path>: <problem>".
  explicit SafeTensorsReader(std::string path);
  // The same checks on a file already in memory, which must outlive the reader; `name`
  // stands for the path in errors.
  SafeTensorsReader(std::string name, std::string_view bytes);
  ~SafeTensorsReader();
  // The reader keeps the file it validated open, so a file renamed over `path` later
  // (an atomic save) cannot pair this header with another file's data.
  SafeTensorsReader(const SafeTensorsReader&) = delete;
  SafeTensorsReader& operator=(const SafeTensorsReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }  // sorted by offset
  const Entry* find(std::string_view name) const;                 // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Converts the tensor's data to float32 into dst (entry.numel floats).
  void read(const Entry& e, float* dst) const;
  std::vector<float> read(const Entry& e) const;

 private:
  void validate(uint64_t file_size);
  // Exactly `size` bytes at `offset` of the file, from the descriptor or from memory.
  void read_at(void* dst, size_t size, uint64_t offset) const;

  std::string path_;
  int fd_ = -1;              // -1: the file is `memory_`
  std::string_view memory_;
  uint64_t data_start_ = 0;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;  // position in entries_
  std::map<std::string, std::string> metadata_;
};

struct TensorView {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
};

// Writes atomically: to a temporary file beside `path`, fsync, rename. On any failure the
// temporary is removed, `path` is untouched, and vitqk::Error is thrown. Tensors are
// stored in the order given, converted to `dtype` (F32, F16 or BF16, round-to-nearest-even).
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata, DType dtype = DType::F32);

}  // namespace vitqk::io
