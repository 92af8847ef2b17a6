#include "core/interrupt.h"

#include <csignal>
#include <unistd.h>

namespace vitqk {

namespace {

volatile std::sig_atomic_t g_requested = 0;

extern "C" void on_signal(int sig) {
  if (g_requested) _exit(128 + sig);  // the user insists
  g_requested = 1;
}

}  // namespace

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_requested != 0; }

}  // namespace vitqk
