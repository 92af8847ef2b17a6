#include "core/interrupt.h"

#include <csignal>
#include <cstring>
#include <mutex>
#include <unistd.h>

namespace vitqk {

namespace {

volatile std::sig_atomic_t g_requested = 0;

// Paths copied in before a slot is marked used, so a handler reads only complete strings.
constexpr int kSlots = 16, kPathMax = 4096;
char g_paths[kSlots][kPathMax];
volatile std::sig_atomic_t g_used[kSlots];
std::mutex g_slots_mutex;

void remove_temporaries() {  // async-signal-safe: unlink only
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i]) ::unlink(g_paths[i]);
}

extern "C" void on_signal(int sig) {
  if (g_requested) {  // the user insists
    remove_temporaries();
    _exit(128 + sig);
  }
  g_requested = 1;
}

extern "C" void on_fatal_signal(int sig) {
  remove_temporaries();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void clean_up_on_fatal_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      sigaction(sig, nullptr, &old);
      if (old.sa_handler != SIG_DFL) continue;  // ignored, or ours: leave it
      struct sigaction sa {};
      sa.sa_handler = on_fatal_signal;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
  });
}

}  // namespace

int track_temporary(const char* path) {
  if (std::strlen(path) >= size_t(kPathMax)) return -1;
  clean_up_on_fatal_signals();
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  for (int i = 0; i < kSlots; ++i)
    if (!g_used[i]) {
      std::strcpy(g_paths[i], path);
      g_used[i] = 1;
      return i;
    }
  return -1;
}

void untrack_temporary(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_slots_mutex);
  g_used[slot] = 0;
}

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_requested != 0; }

}  // namespace vitqk
