#pragma once
// SIGINT/SIGTERM/SIGHUP become a flag that long work polls between steps, so a run can finish its step,
// clean up (drop staging, resume CDC) and exit 128 + signal.
namespace nightjar {

void install_interrupt_handlers();
// The signal received, or 0.
int interrupted_signal();
// Throws Kind::Interrupted when a signal arrived.
void check_interrupted();

}  // namespace nightjar
