#pragma once
// Files are never half-written: write to a temporary name beside the target, fsync, then
// rename into place (and fsync the directory). If commit() is not reached the destructor
// removes the temporary, so an exception leaves the previous file intact, and so does a
// signal that ends the process (core/interrupt.h removes the temporary first). A target that
// exists and is not a regular file (a device such as /dev/null, a FIFO, a directory) is
// refused, never replaced; a symbolic link to a file is followed, and the file replaced.
#include <cstddef>
#include <string>

namespace vitqk::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws Error "<path>: cannot create ..."
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);  // throws Error (e.g. disk full), naming the target
  void commit();                              // fsync + rename; throws Error

 private:
  std::string path_, target_, tmp_;
  int fd_ = -1, slot_ = -1;
};

// Convenience for small text files (reports, logs rewritten whole).
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace vitqk::io
