// The MPI communicator (Open MPI; built with METANAS_WITH_MPI): MPI_COMM_WORLD,
// CPU tensors directly, CUDA tensors staged through the host.
#pragma once
#include "metanas/meta/dist/communicator.h"

namespace metanas::meta::dist {

// Initialises MPI (once per process) and returns the world communicator.
std::shared_ptr<Communicator> mpi_world();
// The NCCL communicator over `mpi` (ncclUniqueId broadcast over MPI); host
// messages and CPU tensors go through `mpi`.
std::shared_ptr<Communicator> nccl_over(std::shared_ptr<Communicator> mpi);
// The node-local rank from the launcher's environment (0 when unknown).
int local_rank();

}  // namespace metanas::meta::dist
