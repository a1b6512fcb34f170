// The one-rank communicator, the rank-agreement check and the launch probe
// (communicator.h).
#include <cstdlib>
#include <sstream>

#include "metanas/engine/error.h"
#include "metanas/meta/dist/communicator.h"

namespace metanas::meta::dist {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single-process"; }
  void allgather(const Tensor& send, Tensor& recv) override {
    MN_CHECK(recv.numel() == send.numel(), "allgather: the receive buffer holds ", recv.numel(),
             " floats for one rank's ", send.numel());
    if (!recv.same_as(send)) recv.copy_(send);
  }
  void allreduce_sum(Tensor&) override {}
  std::vector<std::string> allgather_bytes(const std::string& mine) override { return {mine}; }
  [[noreturn]] void abort(int status) override { std::exit(status); }
};

}  // namespace

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void check_same_on_all_ranks(Communicator& comm, const std::string& value, const std::string& what) {
  const std::vector<std::string> all = comm.allgather_bytes(value);
  std::ostringstream bad;
  int n = 0;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) bad << (n++ ? ", " : "") << r;
  if (n > 0)
    throw MismatchError(str_cat("the ", what, " of rank", n > 1 ? "s " : " ", bad.str(), " differs from rank 0's (",
                                all.size(), " ranks): every rank must run the same binary with the same "
                                "configuration; refusing to start"));
}

}  // namespace metanas::meta::dist
