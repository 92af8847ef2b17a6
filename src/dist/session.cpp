#include "dist/session.h"

// The C API only: OpenMPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <iostream>

#include "dist/comm.h"

namespace vitqk::dist {

namespace {

// MPI counts are ints: large buffers go in pieces.
constexpr size_t kMaxCount = size_t(1) << 30;

class MpiWorld final : public Comm {
 public:
  void start() {
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  }
  int size() const override { return size_; }
  int rank() const override { return rank_; }
  void allreduce_sum(float* v, size_t n) const override { allreduce(v, n, MPI_FLOAT); }
  void allreduce_sum(double* v, size_t n) const override { allreduce(v, n, MPI_DOUBLE); }
  void broadcast(void* data, size_t bytes, int root) const override {
    for (size_t i = 0; i < bytes; i += kMaxCount)
      MPI_Bcast(static_cast<char*>(data) + i, int(std::min(kMaxCount, bytes - i)), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void barrier() const override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  int size_ = 1, rank_ = 0;
  // The default error handler, MPI_ERRORS_ARE_FATAL, stays: a lost peer ends the job
  // instead of returning an error code nobody could recover from.
  template <typename T>
  static void allreduce(T* v, size_t n, MPI_Datatype type) {
    for (size_t i = 0; i < n; i += kMaxCount)
      MPI_Allreduce(MPI_IN_PLACE, v + i, int(std::min(kMaxCount, n - i)), type, MPI_SUM, MPI_COMM_WORLD);
  }
};

MpiWorld mpi_world;
bool mpi_active = false;

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

const Comm& world() { return mpi_active ? static_cast<const Comm&>(mpi_world) : single_process(); }

Launcher detect_launcher() {
  if (env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK")) return Launcher::OpenMpi;
  if (const char* n = env("PMI_SIZE"); n && std::atoi(n) > 1)
    fail("started by a PMI launcher (PMI_SIZE=", n, ": MPICH's mpiexec or srun --mpi=pmi2), but vitqk is built "
         "with OpenMPI: start it with OpenMPI's mpirun (or srun --mpi=pmix)");
  return Launcher::None;
}

Session::Session() {
  if (detect_launcher() == Launcher::None) return;
  int provided = 0;
  // Only the main thread calls MPI; OpenMP threads just compute.
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    fail("MPI_Init failed: is OpenMPI (openmpi-bin, libopenmpi3) installed on every host?");
  mpi_world.start();
  mpi_active = true;
}

Session::~Session() {
  if (!mpi_active) return;
  mpi_active = false;
  MPI_Finalize();
}

int report_error(const std::string& message, bool agreed) {
  const Comm& c = world();
  if (c.size() == 1 || agreed) {
    if (c.rank() == 0) std::cerr << "vitqk: error: " << message << "\n";
    return 1;
  }
  std::cerr << "vitqk: error: rank " << c.rank() << ": " << message << "\n" << std::flush;
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

int report_interrupt(const std::string& message) {
  if (world().rank() == 0) std::cerr << "vitqk: " << message << "\n";
  return 130;
}

}  // namespace vitqk::dist
