#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <libpng16/png.h>
#include <jpeglib.h>
