#ifndef CTERMINALGUARD_H
#define CTERMINALGUARD_H
#include <stddef.h>

/// Restores the terminal when the process crashes (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT), on
/// whichever thread the fault happens: writes `restore` (the terminal's own strings that leave the
/// alternate screen, show the cursor and reset attributes and mouse reporting) and puts back the terminal
/// modes saved by `terminal_guard_save_modes`, then hands the signal to the handler that was installed before (Swift's
/// backtracer, or the default action). Only async-signal-safe calls run in the handler.
void terminal_guard_install(const unsigned char *restore, size_t length);

/// Saves the terminal modes to put back on a crash; call before the terminal is set up.
void terminal_guard_save_modes(void);

/// Removes the handlers (the terminal was restored the normal way).
void terminal_guard_remove(void);

#endif
