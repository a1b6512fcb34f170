// RunLock: an exclusive flock on DIR/.lock held for a meta-train's lifetime,
// so that two processes never write one run folder. The lock file holds the
// holder's pid, which the refused process names. The kernel drops the lock
// when the holder exits in any way (kill -9 included), so a stale file never
// blocks a later run.
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "args.h"
#include "metanas/engine/error.h"

namespace metanas::cli {

class RunLock {
 public:
  RunLock() = default;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

  // Takes the lock of run folder `dir` (which must exist) or throws a
  // UsageError naming the pid of the process that holds it.
  void acquire(const std::string& dir, const char* program) {
    const std::string path = (std::filesystem::path(dir) / ".lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    MN_CHECK(fd_ >= 0, "cannot create the lock file '", path, "': ", std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {0};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("unknown");
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK)
        MN_THROW("cannot lock '", path, "': ", std::strerror(err));
      throw UsageError(str_cat("run folder '", dir, "' is in use by another ", program, " (pid ", pid,
                               "); wait for it to finish, stop it, or choose another --out"));
    }
    // Ours now: record our pid for whoever is refused next.
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
      MN_THROW("cannot write the lock file '", path, "': ", std::strerror(errno));
  }

 private:
  int fd_ = -1;
};

}  // namespace metanas::cli
