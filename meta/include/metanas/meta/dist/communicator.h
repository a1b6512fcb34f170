// Communicator: the transport of distributed meta-training, behind one small
// interface so that the learners and programs never see MPI or NCCL.
// Implementations: the single process (this header), MPI (CPU collectives,
// process start-up; mpi_communicator.cpp) and NCCL over MPI (collectives on
// GPU tensors; nccl_communicator.cpp). docs/distributed.md says how to launch.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/engine/error.h"
#include "metanas/engine/tensor.h"

namespace metanas::meta::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single-process", "mpi" or "nccl".
  virtual std::string name() const = 0;

  // Every rank's `send` (the same numel on every rank) concatenated in rank
  // order into `recv` (size() * send.numel() floats); both on one device.
  virtual void allgather(const Tensor& send, Tensor& recv) = 0;
  // In-place sum over the ranks. The summation order is the library's
  // (not reproducible across rank counts).
  virtual void allreduce_sum(Tensor& buf) = 0;
  // Every rank's bytes, in rank order (small host messages: hashes, reports).
  virtual std::vector<std::string> allgather_bytes(const std::string& mine) = 0;
  // Ends every rank of the job at once (MPI_Abort); the single process exits.
  [[noreturn]] virtual void abort(int status) = 0;
};

// The one-rank communicator (no MPI): allgather copies, allreduce keeps.
std::shared_ptr<Communicator> single_process();

// Whether this build has MPI support (find_package(MPI) at configure time).
bool built_with_mpi();
// Whether this build can use NCCL for CUDA tensors.
bool built_with_nccl();

// The communicator of this process: MPI when the build has it and the
// process was started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE,
// PMIX_RANK or PMI_SIZE), else the single process. With use_nccl (a CUDA run)
// the MPI communicator gets NCCL collectives for CUDA tensors, the GPU chosen
// by the local rank (docs/distributed.md). MPI is finalised at exit.
std::shared_ptr<Communicator> world(bool use_nccl = false);
// Whether an MPI launcher started this process (whatever the build).
bool launched_by_mpi();

// The ranks disagree at start (check_same_on_all_ranks): every rank throws
// it after the same gather, so none is left waiting and no rank "failed".
class MismatchError : public Error {
 public:
  explicit MismatchError(const std::string& what) : Error(what) {}
};

// Throws MismatchError (on every rank) naming the ranks whose `value`
// differs from rank 0's (what = what is compared, e.g. "configuration and
// binary hash").
void check_same_on_all_ranks(Communicator& comm, const std::string& value, const std::string& what);

}  // namespace metanas::meta::dist
