#pragma once
// MPI for the life of the program, only when OpenMPI's launcher started it. `mpirun` (and
// PMIx launchers such as `srun --mpi=pmix`) give every process OMPI_COMM_WORLD_SIZE or
// PMIX_RANK; without them MPI is never initialised and vitqk is a single process, exactly
// as if MPI did not exist. A process of another MPI's launcher (MPICH/Hydra, `srun
// --mpi=pmi2`: PMI_SIZE set) is refused rather than run as N unrelated trainings writing
// the same files.
#include <string>

namespace vitqk::dist {

enum class Launcher { None, OpenMpi };

// From the environment; throws Error for a launcher vitqk cannot join.
Launcher detect_launcher();

class Session {
 public:
  Session();  // MPI_Init_thread when detect_launcher() says so; world() is then MPI_COMM_WORLD
  ~Session();  // MPI_Finalize
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Prints an error that ends the program and returns the exit code. A single process, or an
// AgreedError (`agreed`), ends normally with one message (rank 0's). Any other error under
// MPI is printed with its rank and ends the whole job (MPI_Abort): the other ranks may be
// waiting for this one in a collective.
int report_error(const std::string& message, bool agreed);

// The same for Ctrl-C or SIGTERM, which every rank acts on at the same step (the trainer
// agrees on it); exit code 130. Under mpirun the signal comes from mpirun, which kills
// whatever still runs a second later.
int report_interrupt(const std::string& message);

}  // namespace vitqk::dist
