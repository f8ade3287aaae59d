// devin-orch entry point: process-wide allocator settings, then the subcommand and the CLI.
#include "devin_orch/app/cli/cli.hpp"

#include <malloc.h>

int main(int argc, char** argv) {
  // glibc gives the top of the heap back to the kernel as soon as 128 KiB of it is free. The
  // daemon works in bursts (a page of statuses, a group of creates), so it returned and faulted
  // back the same pages all run long, a system call each way. Keeping up to 1 MiB free for the
  // next burst does not raise the peak, which the bursts set anyway.
  mallopt(M_TRIM_THRESHOLD, 1 << 20);
  return devin_orch::app::run_cli(argc, argv);
}
