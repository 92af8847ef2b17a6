#pragma once
// The processes of a data-parallel run and the few collectives training needs. Outside
// mpirun this is one process and every collective does nothing; launched by OpenMPI's
// mpirun (see session.h) it is MPI_COMM_WORLD.
//
// Errors: a rank that throws while the others wait in a collective would hang them. So a
// failure that only some ranks may see (bad data on one host, a checkpoint only rank 0
// reads) is decided collectively: every rank calls agree()/collectively() at the same
// point, and all of them throw the same AgreedError, which ends every rank normally. Any
// other error ends the whole job (dist::report_error -> MPI_Abort).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace vitqk::dist {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;
  // Element-wise sum over all ranks, in place. Every rank receives the same bits.
  virtual void allreduce_sum(float* v, size_t n) const = 0;
  virtual void allreduce_sum(double* v, size_t n) const = 0;
  // `bytes` of root's `data` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) const = 0;
  virtual void barrier() const = 0;
};

// This run's processes: MPI_COMM_WORLD inside an MPI Session, else single_process().
const Comm& world();
const Comm& single_process();

// A failure every rank knows of and ends with (no abort needed).
struct AgreedError : Error {
  using Error::Error;
};

// Every rank calls this at the same point with its own error ("" if none). If any rank has
// one, every rank throws AgreedError with the lowest failing rank's message, prefixed
// "rank R: " unless every rank failed.
void agree(const Comm& c, const std::string& error);

// Runs f on every rank, then agree()s on the first vitqk::Error any rank's f threw.
template <typename F>
void collectively(const Comm& c, F&& f) {
  std::string error;
  try {
    f();
  } catch (const Error& e) {
    error = e.what();
    if (error.empty()) error = "unknown error";
  }
  agree(c, error);
}

// Root's JSON value on every rank.
nlohmann::json broadcast_json(const Comm& c, const nlohmann::json& value, int root = 0);

// Every rank passes its own JSON object: unless each rank's values equal rank 0's, key for
// key, every rank throws AgreedError naming the first rank and key that differ, with
// `advice` appended.
void require_same(const Comm& c, const nlohmann::json& mine, const std::string& advice);

// CRC32 of bytes: cheap evidence that ranks hold the same data or weights.
uint32_t checksum(const void* data, size_t bytes);

}  // namespace vitqk::dist
