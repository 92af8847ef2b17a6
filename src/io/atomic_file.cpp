#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/interrupt.h"

namespace vitqk::io {

namespace {

// What a rename must replace for `path`: itself, or the file a symbolic link leads to (made
// if it does not exist yet), so the link stays a link.
std::string rename_target(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail(path, ": not a regular file (", S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket",
         "); give a file name");
  namespace fs = std::filesystem;
  fs::path p = path;
  std::error_code ec;
  for (int hops = 0; hops < 40 && fs::is_symlink(p, ec); ++hops) {
    const fs::path next = fs::read_symlink(p, ec);
    if (ec) break;
    p = next.is_absolute() ? next : p.parent_path() / next;
  }
  return p.string();
}

}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), target_(rename_target(path_)), tmp_(cat(target_, ".tmp.", ::getpid())) {
  const int flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC;
  fd_ = ::open(tmp_.c_str(), flags, 0644);
  // The name carries our pid, so no other live process owns it: it is left over from a
  // killed run that had the same pid (common in containers), and safe to replace.
  if (fd_ < 0 && errno == EEXIST && ::unlink(tmp_.c_str()) == 0) fd_ = ::open(tmp_.c_str(), flags, 0644);
  if (fd_ < 0) fail(path_, ": cannot create ", tmp_, ": ", std::strerror(errno));
  slot_ = track_temporary(tmp_.c_str());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  untrack_temporary(slot_);
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0) fail(path_, ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_, ": write failed: ", std::strerror(errno));
    if (n == 0) fail(path_, ": write failed: ", std::strerror(ENOSPC));  // no progress: the device is full
    p += n, size -= size_t(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(path_, ": commit called twice");
  if (::fsync(fd_) != 0) fail(path_, ": fsync failed: ", std::strerror(errno));
  // close() can report a deferred write error (NFS, quotas): check it before renaming.
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail(path_, ": write failed: ", std::strerror(errno));
  if (::rename(tmp_.c_str(), target_.c_str()) != 0)
    fail(path_, ": cannot rename ", tmp_, " into place: ", std::strerror(errno));
  tmp_.clear();
  untrack_temporary(slot_);
  slot_ = -1;

  // The rename is durable only once the directory entry is on disk.
  const std::filesystem::path parent = std::filesystem::path(target_).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(path_, ": cannot open directory ", dir, " to sync it: ", std::strerror(errno));
  // Some file systems cannot sync a directory (EINVAL); the rename itself has happened.
  const bool ok = ::fsync(dfd) == 0 || errno == EINVAL;
  const int err = errno;
  ::close(dfd);
  if (!ok) fail(path_, ": fsync of directory ", dir, " failed: ", std::strerror(err));
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents.data(), contents.size());
  f.commit();
}

}  // namespace vitqk::io
