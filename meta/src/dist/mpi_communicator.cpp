// MpiCommunicator (mpi_communicator.h). Without MPI in the build this file
// only provides world()'s single-process fallback.
#include "mpi_communicator.h"

#include <cstdlib>
#include <string>

#include "metanas/engine/error.h"

#if METANAS_WITH_MPI
#include <mpi.h>
#endif

namespace metanas::meta::dist {

int local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

#if METANAS_WITH_MPI

namespace {

void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  MN_THROW(what, " failed: ", std::string(msg, static_cast<size_t>(len)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) mpi_check(MPI_Init(nullptr, nullptr), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void allgather(const Tensor& send, Tensor& recv) override {
    const int64_t n = send.numel();
    MN_CHECK(recv.numel() == n * size_, "allgather: the receive buffer holds ", recv.numel(), " floats for ",
             size_, " ranks of ", n);
    MN_CHECK(n < (int64_t(1) << 31), "allgather: ", n, " floats are more than one MPI message holds");
    if (send.device() == Device::CPU && recv.device() == Device::CPU) {
      mpi_check(MPI_Allgather(send.data(), static_cast<int>(n), MPI_FLOAT, recv.data(), static_cast<int>(n),
                              MPI_FLOAT, MPI_COMM_WORLD),
                "MPI_Allgather");
      return;
    }
    const std::vector<float> s = send.to_vector();  // device buffers: through the host
    std::vector<float> r(static_cast<size_t>(recv.numel()));
    mpi_check(MPI_Allgather(s.data(), static_cast<int>(n), MPI_FLOAT, r.data(), static_cast<int>(n), MPI_FLOAT,
                            MPI_COMM_WORLD),
              "MPI_Allgather");
    recv.copy_(Tensor::from_vector(r, recv.shape()));
  }

  void allreduce_sum(Tensor& buf) override {
    const int64_t n = buf.numel();
    MN_CHECK(n < (int64_t(1) << 31), "allreduce: ", n, " floats are more than one MPI message holds");
    if (buf.device() == Device::CPU) {
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                "MPI_Allreduce");
      return;
    }
    std::vector<float> h = buf.to_vector();
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, h.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce");
    buf.copy_(Tensor::from_vector(h, buf.shape()));
  }

  std::vector<std::string> allgather_bytes(const std::string& mine) override {
    int len = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<size_t>(size_)), offs(static_cast<size_t>(size_));
    mpi_check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) offs[r] = total, total += lens[r];
    std::string all(static_cast<size_t>(total), '\0');
    mpi_check(MPI_Allgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR,
                             MPI_COMM_WORLD),
              "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(static_cast<size_t>(offs[r]), static_cast<size_t>(lens[r])));
    return out;
  }

  [[noreturn]] void abort(int status) override {
    MPI_Abort(MPI_COMM_WORLD, status);
    std::exit(status);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> mpi_world() { return std::make_shared<MpiCommunicator>(); }
bool built_with_mpi() { return true; }

#else

std::shared_ptr<Communicator> mpi_world() {
  MN_THROW("this build has no MPI support (install libopenmpi-dev and reconfigure: docs/distributed.md)");
}
bool built_with_mpi() { return false; }

#endif

namespace {

// One rank per GPU: the engine uses the first visible device, so each rank
// sees only the GPU of its local rank (an explicit CUDA_VISIBLE_DEVICES with
// one entry is kept; with several, the local rank picks one).
void pick_gpu_by_local_rank() {
  const int lr = local_rank();
  const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string pick = std::to_string(lr);
  if (vis && *vis) {
    std::vector<std::string> ids;
    std::string cur;
    for (const char* p = vis;; ++p) {
      if (*p == ',' || *p == '\0') {
        if (!cur.empty()) ids.push_back(cur);
        cur.clear();
        if (*p == '\0') break;
      } else {
        cur += *p;
      }
    }
    if (ids.size() <= 1) return;
    pick = ids[static_cast<size_t>(lr) % ids.size()];
  }
  setenv("CUDA_VISIBLE_DEVICES", pick.c_str(), 1);
}

}  // namespace

std::shared_ptr<Communicator> world(bool use_nccl) {
  static std::shared_ptr<Communicator> w;
  if (w) return w;
  if (!launched_by_mpi()) return w = single_process();
  MN_CHECK(built_with_mpi(), "this process was started by mpirun but the build has no MPI support "
                             "(install libopenmpi-dev and reconfigure: docs/distributed.md)");
  if (use_nccl) pick_gpu_by_local_rank();
  std::shared_ptr<Communicator> mpi = mpi_world();
  w = use_nccl && built_with_nccl() && mpi->size() > 1 ? nccl_over(mpi) : mpi;
  return w;
}

}  // namespace metanas::meta::dist
