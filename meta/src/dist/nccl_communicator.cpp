// NcclCommunicator (mpi_communicator.h): collectives on CUDA tensors with
// NCCL, the ncclUniqueId broadcast over MPI; host messages, aborts and CPU
// tensors go through MPI. Built with METANAS_WITH_NCCL (CUDA + NCCL + MPI).
// libnccl (over 200 MiB) is opened at run time, only by a distributed CUDA
// run, so the programs start on machines without it.
#include "mpi_communicator.h"

#include <dlfcn.h>

#include <cstdlib>

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

// The NCCL entry points, from libnccl.so.2 (dlopen).
struct Nccl {
  decltype(&::ncclGetUniqueId) get_unique_id;
  decltype(&::ncclCommInitRank) comm_init_rank;
  decltype(&::ncclAllGather) all_gather;
  decltype(&::ncclAllReduce) all_reduce;
  decltype(&::ncclCommDestroy) comm_destroy;
  decltype(&::ncclCommAbort) comm_abort;
  decltype(&::ncclGetErrorString) error_string;
};

const Nccl& nccl() {
  static const Nccl n = [] {
    void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (!h) h = dlopen("libnccl.so", RTLD_NOW | RTLD_GLOBAL);
    MN_CHECK(h, "cannot load NCCL (libnccl.so.2) for a distributed CUDA run: ", dlerror(),
             " (add the CUDA toolkit's lib64 to LD_LIBRARY_PATH)");
    auto sym = [&](const char* name) {
      void* f = dlsym(h, name);
      MN_CHECK(f, "NCCL: no symbol ", name);
      return f;
    };
    Nccl r;
    r.get_unique_id = reinterpret_cast<decltype(r.get_unique_id)>(sym("ncclGetUniqueId"));
    r.comm_init_rank = reinterpret_cast<decltype(r.comm_init_rank)>(sym("ncclCommInitRank"));
    r.all_gather = reinterpret_cast<decltype(r.all_gather)>(sym("ncclAllGather"));
    r.all_reduce = reinterpret_cast<decltype(r.all_reduce)>(sym("ncclAllReduce"));
    r.comm_destroy = reinterpret_cast<decltype(r.comm_destroy)>(sym("ncclCommDestroy"));
    r.comm_abort = reinterpret_cast<decltype(r.comm_abort)>(sym("ncclCommAbort"));
    r.error_string = reinterpret_cast<decltype(r.error_string)>(sym("ncclGetErrorString"));
    return r;
  }();
  return n;
}

void nccl_check(ncclResult_t rc, const char* what) {
  MN_CHECK(rc == ncclSuccess, what, " failed: ", nccl().error_string(rc));
}
void cuda_check(cudaError_t rc, const char* what) {
  MN_CHECK(rc == cudaSuccess, what, " failed: ", cudaGetErrorString(rc));
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::shared_ptr<Communicator> mpi) : mpi_(std::move(mpi)) {
    ncclUniqueId id;
    if (mpi_->rank() == 0) nccl_check(nccl().get_unique_id(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    // The engine computes on the first visible device (world() narrowed
    // CUDA_VISIBLE_DEVICES to this rank's GPU).
    cuda_check(cudaSetDevice(0), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    nccl_check(nccl().comm_init_rank(&comm_, mpi_->size(), id, mpi_->rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    nccl().comm_destroy(comm_);
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
    nccl_check(nccl().all_gather(send.data(), recv.data(), static_cast<size_t>(send.numel()), ncclFloat, comm_, stream_),
               "ncclAllGather");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL)");
  }
  void allreduce_sum(Tensor& buf) override {
    if (buf.device() != Device::CUDA) return mpi_->allreduce_sum(buf);
    backend(Device::CUDA).synchronize();
    nccl_check(nccl().all_reduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()), ncclFloat, ncclSum, comm_,
                             stream_),
               "ncclAllReduce");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (NCCL)");
  }
  std::vector<std::string> allgather_bytes(const std::string& mine) override { return mpi_->allgather_bytes(mine); }
  [[noreturn]] void abort(int status) override {
    nccl().comm_abort(comm_);
    mpi_->abort(status);
    std::exit(status);
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
