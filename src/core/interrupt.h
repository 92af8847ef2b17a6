#pragma once
// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, so long work
// (training, the study) saves its state and leaves no half-written output instead of dying
// mid-write.
#include "core/error.h"

namespace vitqk {

struct Interrupted : Error {
  using Error::Error;
};

// Installs the handlers (idempotent). A second signal ends the process at once.
void catch_interrupts();
bool interrupted();

}  // namespace vitqk
