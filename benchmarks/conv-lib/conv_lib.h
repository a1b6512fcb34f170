// conv-lib-bench: the engine's CPU convolution kernels against the libraries
// made for these shapes (oneDNN, libxsmm), per op and per pass. Each library
// lives in its own file (conv_dnnl.cpp, conv_xsmm.cpp) behind this interface;
// CMake builds a file only when its library is installed (libdnnl-dev,
// libxsmm-dev) and the program reports the others as "not built".
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "metanas/kernels/kernel_types.h"

namespace convlib {

enum class Pass { forward, backward_data, backward_weight };
const char* pass_name(Pass p);

// The inputs of one case, all in the engine's layouts: x NCHW, w OIHW
// (Cout, Cin/groups, KH, KW), dy NCHW of the output shape.
struct ConvData {
  metanas::ConvGeom g;
  std::vector<float> x, w, dy;
};

// One library's implementation of one convolution, prepared once (primitive
// creation, JIT, layout choice) and run many times. run() is what is timed: it
// starts from and ends in the engine's layouts, so any reorder a library needs
// is paid inside it, as an engine integration would pay it. result() is the
// pass's output in the engine's layout (y NCHW, dx NCHW, dw OIHW) after run().
class ConvImpl {
 public:
  virtual ~ConvImpl() = default;
  virtual void run(Pass p) = 0;
  virtual const std::vector<float>& result(Pass p) = 0;
};

// nullptr with *why set when the library cannot do this case (or is not
// built); threads = the library's thread count for the run.
std::unique_ptr<ConvImpl> make_dnnl(const ConvData& d, int threads, std::string* why);
std::unique_ptr<ConvImpl> make_xsmm(const ConvData& d, int threads, std::string* why);

}  // namespace convlib
