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

// Temporary files (AtomicFile's) that a signal ending the process removes first, so Ctrl-C
// during a long write leaves nothing behind. track_temporary returns a slot for
// untrack_temporary, or -1 when every slot is taken (the file is then not tracked). Where no
// handler is installed, SIGINT, SIGTERM and SIGHUP get one that removes them and then dies of
// the signal as before.
int track_temporary(const char* path);
void untrack_temporary(int slot);

}  // namespace vitqk
