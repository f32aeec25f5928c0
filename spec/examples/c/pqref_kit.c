/* A pqref conformance example in C: reads the JSON Lines vectors that `pqref vectors export DIR` writes for two
 * algorithms, computes them here, and writes results that `pqref vectors check DIR RESULTS` compares bit for bit.
 *
 *   cc -std=c99 -O2 -o pqref_kit spec/examples/c/pqref_kit.c
 *   pqref vectors export vectors/ --algorithm round_half_away --algorithm float_encode
 *   ./pqref_kit vectors/ results.jsonl && pqref vectors check vectors/ results.jsonl
 *
 * round_half_away: C's roundf (ties away from zero), float32 in and out.
 * float_encode: FP8 E4M3FN only (fmt "float8_e4m3fn", rounding "half_even", saturate true or false), by integer
 * manipulation of the float32 bits. Other formats and stochastic rounding are not implemented: no result is
 * written for them, so `vectors check` lists those variants as not claimed. Bad inputs are answered with the
 * exception type pqref raises (TypeError for a wrong dtype or kind, ValueError for a bad value).
 *
 * pqref_kit_wrong.c compiles this file with two classic mistakes (see PQREF_WRONG below).
 *
 * Only what the two algorithms need of JSON is parsed: a small recursive-descent reader of one line at a time.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal JSON reader --------------------------------------------------------------------------------- */

enum kind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct json {
    enum kind kind;
    int boolean;
    double number;
    char *str;           /* J_STR: the string; J_OBJ member: its key (in keys[]) */
    struct json **items; /* J_ARR elements or J_OBJ values */
    char **keys;         /* J_OBJ keys */
    size_t n;
} json;

static const char *p;

static void fail(const char *what) {
    fprintf(stderr, "pqref_kit: bad JSON (%s) near: %.40s\n", what, p);
    exit(2);
}

static void ws(void) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
}

static json *node(enum kind k) {
    json *j = calloc(1, sizeof(json));
    if (!j) fail("out of memory");
    j->kind = k;
    return j;
}

static void push(json *j, json *item, char *key) {
    j->items = realloc(j->items, (j->n + 1) * sizeof(json *));
    if (j->kind == J_OBJ) j->keys = realloc(j->keys, (j->n + 1) * sizeof(char *));
    if (!j->items || (j->kind == J_OBJ && !j->keys)) fail("out of memory");
    j->items[j->n] = item;
    if (j->kind == J_OBJ) j->keys[j->n] = key;
    j->n++;
}

static char *string(void) {
    if (*p != '"') fail("string expected");
    p++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    while (*p != '"') {
        if (!*p) fail("unterminated string");
        char c = *p++;
        if (c == '\\') {
            c = *p++;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'u') { c = '?'; p += 4; } /* pqref's messages are ASCII apart from this */
        }
        if (len + 2 > cap) s = realloc(s, cap *= 2);
        s[len++] = c;
    }
    p++;
    s[len] = 0;
    return s;
}

static json *value(void) {
    ws();
    json *j;
    if (*p == '{') {
        j = node(J_OBJ);
        p++;
        ws();
        if (*p == '}') { p++; return j; }
        for (;;) {
            ws();
            char *key = string();
            ws();
            if (*p++ != ':') fail("':' expected");
            push(j, value(), key);
            ws();
            if (*p == ',') { p++; continue; }
            if (*p++ != '}') fail("'}' expected");
            return j;
        }
    }
    if (*p == '[') {
        j = node(J_ARR);
        p++;
        ws();
        if (*p == ']') { p++; return j; }
        for (;;) {
            push(j, value(), NULL);
            ws();
            if (*p == ',') { p++; continue; }
            if (*p++ != ']') fail("']' expected");
            return j;
        }
    }
    if (*p == '"') { j = node(J_STR); j->str = string(); return j; }
    if (!strncmp(p, "true", 4)) { p += 4; j = node(J_BOOL); j->boolean = 1; return j; }
    if (!strncmp(p, "false", 5)) { p += 5; return node(J_BOOL); }
    if (!strncmp(p, "null", 4)) { p += 4; return node(J_NULL); }
    char *end;
    j = node(J_NUM);
    j->number = strtod(p, &end);
    if (end == p) fail("value expected");
    p = end;
    return j;
}

static void release(json *j) {
    if (!j) return;
    for (size_t i = 0; i < j->n; i++) {
        release(j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    free(j);
}

static json *get(const json *obj, const char *key) {
    if (!obj || obj->kind != J_OBJ) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

/* A pqref-jsonl array value {"array": {"dtype", "shape", "hex"}} of the given dtype, or NULL. */
static const json *array_of(const json *v, const char *dtype) {
    const json *a = get(v, "array");
    const json *d = get(a, "dtype");
    if (!a || !d || d->kind != J_STR || strcmp(d->str, dtype)) return NULL;
    return a;
}

/* ---- the two algorithms ------------------------------------------------------------------------------------ */

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

#ifndef PQREF_WRONG
static float round_half_away(float x) { return roundf(x); } /* exact: ties away from zero, signed zeros kept */
#endif

/* FP8 E4M3FN code of a float32: 4 exponent bits (bias 7), 3 fraction bits, no Inf, NaN 0x7F / 0xFF, max 448. */
static uint8_t e4m3_encode(float x, int saturate) {
    uint32_t u = to_bits(x), sign = u >> 31, biased = (u >> 23) & 0xFF, frac = u & 0x7FFFFF;
    if (biased == 0xFF) /* NaN keeps its sign; +-Inf is an overflow */
        return (uint8_t)(sign << 7 | (frac ? 0x7F : saturate ? 0x7E : 0x7F));
    int64_t sig = biased ? (int64_t)(frac | 0x800000) : (int64_t)frac; /* |x| = sig * 2**exp */
    int exp = (biased ? (int)biased : 1) - 150;
    if (sig == 0) return (uint8_t)(sign << 7);
    int lead = 63 - __builtin_clzll((unsigned long long)sig), k = lead + exp, emin = -6;
    int top = k > emin ? k : emin;
    int r = top - 3 - exp; /* the number of dropped bits */
    if (r > 56) r = 56;
    int64_t n = sig >> r, rem = sig & ((INT64_C(1) << r) - 1), half = INT64_C(1) << (r - 1);
#ifndef PQREF_WRONG
    n += rem > half || (rem == half && (n & 1)); /* to nearest, ties to even */
#else
    n += rem >= half; /* WRONG: ties away from zero, as some vendor kernels round */
#endif
    int64_t mag = ((int64_t)(top - emin) << 3) + n; /* a carry into the next binade is an addition */
    if (mag > 0x7E) mag = saturate ? 0x7E : 0x7F;
    return (uint8_t)(sign << 7 | mag);
}

/* ---- one case ---------------------------------------------------------------------------------------------- */

static void error(FILE *out, const char *algorithm, long index, const char *type) {
    fprintf(out, "{\"algorithm\":\"%s\",\"case\":%ld,\"error\":{\"type\":\"%s\"}}\n", algorithm, index, type);
}

static void begin_output(FILE *out, const char *algorithm, long index, const char *dtype, const json *shape) {
    fprintf(out, "{\"algorithm\":\"%s\",\"case\":%ld,\"output\":{\"array\":{\"dtype\":\"%s\",\"shape\":[", algorithm,
            index, dtype);
    for (size_t i = 0; i < shape->n; i++) fprintf(out, "%s%.0f", i ? "," : "", shape->items[i]->number);
    fputs("],\"hex\":[", out);
}

static void rha_case(FILE *out, const json *c, long index) {
    const json *args = get(c, "args");
    const json *x = args && args->n == 1 ? array_of(args->items[0], "float32") : NULL;
    if (!x) { error(out, "round_half_away", index, "TypeError"); return; }
    const json *hex = get(x, "hex");
    for (size_t i = 0; i < hex->n; i++)
        if (!isfinite(from_bits((uint32_t)strtoul(hex->items[i]->str, NULL, 16)))) {
            error(out, "round_half_away", index, "ValueError");
            return;
        }
    begin_output(out, "round_half_away", index, "float32", get(x, "shape"));
    for (size_t i = 0; i < hex->n; i++) {
        float v = from_bits((uint32_t)strtoul(hex->items[i]->str, NULL, 16));
        fprintf(out, "%s\"%08x\"", i ? "," : "", (unsigned)to_bits(round_half_away(v)));
    }
    fputs("]}}}\n", out);
}

static const char *FORMATS[] = {"float8_e4m3fn", "float8_e5m2", "float6_e3m2fn", "float6_e2m3fn",
                                "float4_e2m1fn", "float8_e8m0fnu"};

/* Returns 1 when a result was written, 0 for a variant this program does not implement. */
static int encode_case(FILE *out, const json *c, long index) {
    const json *args = get(c, "args"), *kw = get(c, "kwargs");
    if (!args || args->n != 2 || args->items[1]->kind != J_STR) return 0;
    const char *fmt = args->items[1]->str;
    int known = 0;
    for (int i = 0; i < 6; i++) known |= !strcmp(fmt, FORMATS[i]);
    if (!known) { error(out, "float_encode", index, "ValueError"); return 1; }
    if (strcmp(fmt, "float8_e4m3fn")) return 0;
    const json *sat = get(kw, "saturate"), *rounding = get(kw, "rounding"), *key = get(kw, "key");
    if (sat && sat->kind != J_BOOL) { error(out, "float_encode", index, "TypeError"); return 1; }
    if (rounding && (rounding->kind != J_STR ||
                     (strcmp(rounding->str, "half_even") && strcmp(rounding->str, "stochastic")))) {
        error(out, "float_encode", index, "ValueError");
        return 1;
    }
    if (rounding && !strcmp(rounding->str, "stochastic")) return 0;
    if (key && key->kind != J_NULL) { error(out, "float_encode", index, "ValueError"); return 1; }
    const json *x = array_of(args->items[0], "float32");
    if (!x) { error(out, "float_encode", index, "TypeError"); return 1; }
    int saturate = sat ? sat->boolean : 1;
    const json *hex = get(x, "hex");
    begin_output(out, "float_encode", index, "uint8", get(x, "shape"));
    for (size_t i = 0; i < hex->n; i++) {
        float v = from_bits((uint32_t)strtoul(hex->items[i]->str, NULL, 16));
        fprintf(out, "%s\"%02x\"", i ? "," : "", e4m3_encode(v, saturate));
    }
    fputs("]}}}\n", out);
    return 1;
}

/* ---- the files --------------------------------------------------------------------------------------------- */

static char *read_line(FILE *f) {
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n') {
        if (len + 2 > cap) s = realloc(s, cap *= 2);
        s[len++] = (char)c;
    }
    if (c == EOF && len == 0) { free(s); return NULL; }
    s[len] = 0;
    return s;
}

static long run(const char *dir, const char *algorithm, FILE *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, algorithm);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "pqref_kit: cannot open %s\n", path); exit(2); }
    long written = 0;
    char *line;
    while ((line = read_line(f))) {
        p = line;
        json *c = value();
        const json *index = get(c, "case");
        if (!index || index->kind != J_NUM) fail("no case index");
        if (!strcmp(algorithm, "round_half_away")) { rha_case(out, c, (long)index->number); written++; }
        else written += encode_case(out, c, (long)index->number);
        release(c);
        free(line);
    }
    fclose(f);
    return written;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s VECTORS_DIR RESULTS_FILE\n", argv[0]);
        return 2;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) { fprintf(stderr, "pqref_kit: cannot write %s\n", argv[2]); return 2; }
    long n = run(argv[1], "round_half_away", out);
    n += run(argv[1], "float_encode", out);
    fclose(out);
    fprintf(stderr, "pqref_kit: wrote %ld results to %s\n", n, argv[2]);
    return 0;
}
