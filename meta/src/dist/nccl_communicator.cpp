// NcclCommunicator (mpi_communicator.h): collectives on CUDA tensors with
// NCCL, the ncclUniqueId broadcast over MPI; host messages, aborts and CPU
// tensors go through MPI. Built with METANAS_WITH_NCCL (CUDA + NCCL + MPI).
#include "mpi_communicator.h"

#include "metanas/engine/backend.h"
#include "metanas/engine/error.h"

#if METANAS_WITH_NCCL
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#endif

namespace metanas::meta::dist {

#if METANAS_WITH_NCCL

namespace {

void nccl_check(ncclResult_t rc, const char* what) {
  MN_CHECK(rc == ncclSuccess, what, " failed: ", ncclGetErrorString(rc));
}
void cuda_check(cudaError_t rc, const char* what) {
  MN_CHECK(rc == cudaSuccess, what, " failed: ", cudaGetErrorString(rc));
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::shared_ptr<Communicator> mpi) : mpi_(std::move(mpi)) {
    ncclUniqueId id;
    if (mpi_->rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    // The engine computes on the first visible device (world() narrowed
    // CUDA_VISIBLE_DEVICES to this rank's GPU).
    cuda_check(cudaSetDevice(0), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    nccl_check(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  std::string name() const override { return "nccl"; }

  void allgather(const Tensor& send, Tensor& recv) override {
    if (send.device() != Device::CUDA || recv.device() != Device::CUDA) return mpi_->allgather(send, recv);
    MN_CHECK(recv.numel() == send.numel() * size(), "allgather: the receive buffer holds ", recv.numel(),
             " floats for ", size(), " ranks of ", send.numel());
    // The engine's stream must have produced `send` before NCCL reads it.
    backend(Device::CUDA).synchronize();
    nccl_check(ncclAllGather(send.data(), recv.data(), static_cast<size_t>(send.numel()), ncclFloat, comm_, stream_),
               "ncclAllGather");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL)");
  }
  void allreduce_sum(Tensor& buf) override {
    if (buf.device() != Device::CUDA) return mpi_->allreduce_sum(buf);
    backend(Device::CUDA).synchronize();
    nccl_check(ncclAllReduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()), ncclFloat, ncclSum, comm_,
                             stream_),
               "ncclAllReduce");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL)");
  }
  std::vector<std::string> allgather_bytes(const std::string& mine) override { return mpi_->allgather_bytes(mine); }
  [[noreturn]] void abort(int status) override {
    ncclCommAbort(comm_);
    mpi_->abort(status);
  }

 private:
  std::shared_ptr<Communicator> mpi_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::shared_ptr<Communicator> nccl_over(std::shared_ptr<Communicator> mpi) {
  return std::make_shared<NcclCommunicator>(std::move(mpi));
}
bool built_with_nccl() { return true; }

#else

std::shared_ptr<Communicator> nccl_over(std::shared_ptr<Communicator> mpi) { return mpi; }
bool built_with_nccl() { return false; }

#endif

}  // namespace metanas::meta::dist
