#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <libpng16/png.h>
#include <jpeglib.h>
/* TurboJPEG reports decoding errors through return codes (its own setjmp stays inside the C library),
   which is what Swift needs: libjpeg's error_exit would have to longjmp across Swift frames. */
#include <turbojpeg.h>
