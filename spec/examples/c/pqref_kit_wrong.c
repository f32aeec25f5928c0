/* The deliberately wrong twin of pqref_kit.c: the same program with two classic mistakes, for `pqref vectors
 * check` to catch with a readable report.
 *
 * - round_half_away as floor(x + 0.5): 0.49999997 rounds up to 1 (x + 0.5 rounds to 1.0 in float32), and
 *   negative ties go up (-2.5 -> -2) instead of away from zero;
 * - FP8 E4M3 ties away from zero instead of to even (0.0009765625, half the smallest subnormal, becomes 0x01).
 *
 *   cc -std=c99 -O2 -o pqref_kit_wrong spec/examples/c/pqref_kit_wrong.c -lm
 */
#include <math.h>

static float round_half_away(float x) { return floorf(x + 0.5f); } /* WRONG: see above */

#define PQREF_WRONG
#include "pqref_kit.c"
