// The decode stack kernel's flags forms (DecodeStackArgs::flags; cuda_decode_stack_kernel.cuh),
// in a translation unit of their own so that they compile beside the other forms.
#include "backend/cuda/cuda_decode_stack_kernel.cuh"

namespace kr::cuda {

void configure_decode_stack_flags_forms() { configure_forms<true>(); }

void launch_decode_stack_flags_form(const cudaLaunchConfig_t& cfg, const DecodeStackArgs& a) {
  launch_form<true>(cfg, a);
}

}  // namespace kr::cuda
