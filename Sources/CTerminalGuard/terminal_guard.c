#include "CTerminalGuard.h"

#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static const int guarded[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT};
#define GUARDED (sizeof(guarded) / sizeof(guarded[0]))

static struct sigaction previous[GUARDED];
static unsigned char restore_bytes[512];
static size_t restore_length;
static struct termios saved_modes;
static int have_modes;
static volatile sig_atomic_t installed;
static volatile sig_atomic_t restored;

static void restore_terminal(void) {
    if (restored) return;
    restored = 1;
    size_t off = 0;
    while (off < restore_length) {
        ssize_t n = write(STDOUT_FILENO, restore_bytes + off, restore_length - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    if (have_modes) tcsetattr(STDIN_FILENO, TCSANOW, &saved_modes);
}

static void on_crash(int sig, siginfo_t *info, void *context) {
    restore_terminal();
    for (size_t i = 0; i < GUARDED; i++) {
        if (guarded[i] != sig) continue;
        struct sigaction *old = &previous[i];
        if (old->sa_flags & SA_SIGINFO) {
            if (old->sa_sigaction) { old->sa_sigaction(sig, info, context); return; }
        } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler != NULL) {
            old->sa_handler(sig);
            return;
        }
        // The default action: put it back and let the signal happen again (a fault re-executes the
        // faulting instruction on return; a sent or raised signal is raised anew).
        signal(sig, SIG_DFL);
        if (sig == SIGABRT || info == NULL || info->si_code <= 0) raise(sig);
        return;
    }
}

void terminal_guard_install(const unsigned char *restore, size_t length) {
    if (length > sizeof(restore_bytes)) length = sizeof(restore_bytes);
    memcpy(restore_bytes, restore, length);
    restore_length = length;
    restored = 0;
    if (installed) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < GUARDED; i++) sigaction(guarded[i], &sa, &previous[i]);
    installed = 1;
}

void terminal_guard_remove(void) {
    if (!installed) return;
    for (size_t i = 0; i < GUARDED; i++) sigaction(guarded[i], &previous[i], NULL);
    installed = 0;
}

void terminal_guard_save_modes(void) {
    have_modes = tcgetattr(STDIN_FILENO, &saved_modes) == 0;
}
