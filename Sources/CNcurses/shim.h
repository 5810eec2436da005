#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>

static inline int shim_color_pair(int n) { return COLOR_PAIR(n); }
static inline attr_t shim_a_bold(void) { return A_BOLD; }
static inline attr_t shim_a_reverse(void) { return A_REVERSE; }
static inline attr_t shim_a_dim(void) { return A_DIM; }
static inline attr_t shim_a_underline(void) { return A_UNDERLINE; }
static inline attr_t shim_a_normal(void) { return A_NORMAL; }
static inline int shim_getmaxy(WINDOW *w) { return getmaxy(w); }
static inline int shim_getmaxx(WINDOW *w) { return getmaxx(w); }
static inline WINDOW *shim_stdscr(void) { return stdscr; }
static inline int shim_colors(void) { return COLORS; }
static inline int shim_color_pairs(void) { return COLOR_PAIRS; }

/* Explorer terminal driver: wide-character cells with extended colour pairs, and mouse macros. */
static inline int shim_put_cell(int y, int x, int wch, attr_t attrs, int pair) {
    cchar_t cc;
    wchar_t s[2];
    s[0] = (wchar_t)wch;
    s[1] = 0;
    int p = pair;
    if (setcchar(&cc, s, attrs, 0, &p) != OK) return ERR;
    return mvadd_wch(y, x, &cc);
}
static inline mmask_t shim_all_mouse_events(void) { return ALL_MOUSE_EVENTS; }
static inline mmask_t shim_button1_pressed(void) { return BUTTON1_PRESSED; }
static inline mmask_t shim_button1_released(void) { return BUTTON1_RELEASED; }
static inline mmask_t shim_button1_clicked(void) { return BUTTON1_CLICKED; }
static inline mmask_t shim_button1_double_clicked(void) { return BUTTON1_DOUBLE_CLICKED; }
static inline mmask_t shim_button4_pressed(void) { return BUTTON4_PRESSED; }
#ifdef BUTTON5_PRESSED
static inline mmask_t shim_button5_pressed(void) { return BUTTON5_PRESSED; }
#else
static inline mmask_t shim_button5_pressed(void) { return 0; }
#endif
/* The next mouse event: returns OK and fills x, y and the button state. */
static inline int shim_getmouse(int *x, int *y, mmask_t *bstate) {
    MEVENT ev;
    if (getmouse(&ev) != OK) return ERR;
    *x = ev.x; *y = ev.y; *bstate = ev.bstate;
    return OK;
}
static inline int shim_key_code_yes(void) { return KEY_CODE_YES; }
/* Opens the terminal as terminfo entry `type` on stdout/stdin; NULL (and nothing drawn) if the entry is unknown. */
static inline SCREEN *shim_newterm(const char *type) {
    return newterm(type, stdout, stdin);
}
/* terminfo strings for the driver's own cell output: NULL when the terminal lacks the capability. */
static inline const char *shim_tigetstr(const char *name) {
    char *s = tigetstr(name);
    return (s == NULL || s == (char *)-1) ? NULL : s;
}
static inline int shim_tigetflag(const char *name) { return tigetflag(name) > 0; }
/* tiparm with one or two integer parameters (tiparm itself is variadic). */
static inline const char *shim_tiparm1(const char *cap, int a) { return tiparm(cap, a); }
static inline const char *shim_tiparm2(const char *cap, int a, int b) { return tiparm(cap, a, b); }
