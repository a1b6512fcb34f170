# Prefer Debian's OpenMP build of OpenBLAS (libopenblas-openmp-dev): it shares
# the OpenMP thread pool with our kernels and runs single-threaded when called
# inside a parallel region, so the two never oversubscribe the cores.
find_library(METANAS_OPENBLAS_LIB NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
find_path(METANAS_OPENBLAS_INCLUDE cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT METANAS_OPENBLAS_LIB)
  message(WARNING "metanas: OpenMP OpenBLAS not found (apt-get install libopenblas-openmp-dev); "
                  "falling back to the default libopenblas")
  find_library(METANAS_OPENBLAS_LIB NAMES openblas REQUIRED)
  find_path(METANAS_OPENBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas REQUIRED)
endif()
add_library(metanas_openblas INTERFACE)
target_link_libraries(metanas_openblas INTERFACE ${METANAS_OPENBLAS_LIB})
target_include_directories(metanas_openblas INTERFACE ${METANAS_OPENBLAS_INCLUDE})
install(TARGETS metanas_openblas EXPORT metanasTargets)
message(STATUS "metanas: OpenBLAS ${METANAS_OPENBLAS_LIB}")
