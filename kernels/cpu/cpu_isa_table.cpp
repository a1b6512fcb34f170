// This ISA variant's kernels as one table (compiled once per ISA with the
// family files; cpu_isa.cpp chooses among the tables).
#include "kernels/cpu/cpu_kernels.h"

namespace metanas::kernels::cpu {
MN_CPU_ISA_BEGIN

const KernelTable& isa_kernel_table() {
  // Positional: the members and this list come from the same op table, in order.
  static const KernelTable table = {
#define MN_KERNEL(name, params, args) &name,
#include "metanas/kernels/op_table.def"
  };
  return table;
}

MN_CPU_ISA_END
}  // namespace metanas::kernels::cpu
