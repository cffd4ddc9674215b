/*
 * Unit tests of wasmproc.c, compiled natively with AddressSanitizer and
 * UBSan against the generated process.h (the host functions are stubbed):
 *
 *     guest-sdk/c/test.sh
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process.h"
#include "wasmproc.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

/* ---- stubs of what the generated bindings provide in a component ---- */

static char last_log[256];
static int last_progress = -1;

void wasmproc_process_host_log(wasmproc_process_host_level_t level, process_string_t *message) {
    snprintf(last_log, sizeof last_log, "%d:%.*s", level, (int)message->len, (const char *)message->ptr);
}

void wasmproc_process_host_progress(uint8_t percent, process_string_t *maybe_message) {
    (void)maybe_message;
    last_progress = percent;
}

void process_string_free(process_string_t *ret) {
    if (ret->len > 0) free(ret->ptr);
    ret->ptr = NULL;
    ret->len = 0;
}

static void free_output(process_output_t *o) {
    process_string_free(&o->id);
    if (o->media_type.is_some) process_string_free(&o->media_type.val);
    if (o->value.tag == WASMPROC_PROCESS_TYPES_VALUE_JSON) process_string_free(&o->value.val.json);
    else free(o->value.val.bytes.ptr);
}

void process_list_output_free(process_list_output_t *ptr) {
    for (size_t i = 0; i < ptr->len; i++) free_output(&ptr->ptr[i]);
    free(ptr->ptr);
    ptr->ptr = NULL;
    ptr->len = 0;
}

/* ---- the process under test: echoes `text`, fails on `fail` ---- */

const char *wp_describe(void) { return "{\"id\": \"test\"}"; }

bool wp_execute(const wp_json *inputs, wp_outputs *out, wp_error *err) {
    if (wp_input(inputs, "fail")) return wp_fail(err, "no-result", "asked to fail (%d)", 7);
    const char *text = wp_input_str(inputs, "text");
    if (!text) return wp_fail(err, "invalid-input", "no text");
    wp_output_str(out, "echo", text);
    wp_output_bytes(out, "raw", text, strlen(text), "text/plain");
    wp_progress(150, NULL);
    wp_log(WP_WARN, "echoed %zu bytes", strlen(text));
    return true;
}

/* ---- tests ---- */

static wp_json *parse(const char *text) { return wp_json_parse(text, strlen(text), NULL, 0); }

static void test_parse_values(void) {
    wp_json *v = parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\\"\\n\\u00e9\\ud83d\\ude00\", "
                       "\"o\": {}, \"e\": [], \"a\": 3} ");
    CHECK(v != NULL);
    CHECK(v->type == WP_JSON_OBJECT && wp_json_len(v) == 5);
    double n = 0;
    /* The last duplicate key wins. */
    CHECK(wp_json_num(wp_json_get(v, "a"), &n) && n == 3);
    const wp_json *first = &v->u.object.members[0].value;
    CHECK(wp_json_len(first) == 5);
    CHECK(wp_json_num(wp_json_at(first, 1), &n) && n == -2500);
    CHECK(wp_json_at(first, 2)->type == WP_JSON_BOOL && wp_json_at(first, 2)->u.boolean);
    CHECK(wp_json_at(first, 4)->type == WP_JSON_NULL);
    CHECK(wp_json_at(first, 5) == NULL);
    CHECK(strcmp(wp_json_str(wp_json_get(v, "s")), "x\"\n\xc3\xa9\xf0\x9f\x98\x80") == 0);
    CHECK(wp_json_len(wp_json_get(v, "o")) == 0 && wp_json_get(v, "o")->type == WP_JSON_OBJECT);
    CHECK(wp_json_get(v, "missing") == NULL && wp_json_get(NULL, "a") == NULL);
    wp_json_free(v);

    wp_json *nul = wp_json_parse("\"a\\u0000b\"", 10, NULL, 0);
    CHECK(nul && nul->u.string.len == 3);
    wp_json_free(nul);
}

static void test_parse_errors(void) {
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "{\"a\": 1,}", "tru", "01x", "-", "1.", "1e",
                         "\"abc", "\"\\x\"", "\"\\ud800\\u0041\"", "[1] 2", "{1: 2}", "\"\x01\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char error[64] = "";
        wp_json *v = wp_json_parse(bad[i], strlen(bad[i]), error, sizeof error);
        CHECK(v == NULL);
        CHECK(strstr(error, "at byte") != NULL);
        if (v) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
            wp_json_free(v);
        }
    }
    /* Deep nesting is refused, not a stack overflow. */
    char deep[2000];
    memset(deep, '[', sizeof deep);
    CHECK(wp_json_parse(deep, sizeof deep, NULL, 0) == NULL);
}

static void test_writing(void) {
    wp_buf b = {0};
    wp_buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9");
    CHECK(strcmp(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"") == 0);
    wp_buf_free(&b);
    double values[] = {0, 3, -2.5, 0.1, 1.0 / 3, 1e300, 123456789012345678.0};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        wp_buf_json_num(&b, values[i]);
        CHECK(strtod(b.data, NULL) == values[i]);
        wp_buf_free(&b);
    }
    wp_buf_json_num(&b, 3);
    CHECK(strcmp(b.data, "3") == 0);
    wp_buf_free(&b);
    wp_buf_json_num(&b, NAN);
    CHECK(strcmp(b.data, "null") == 0);
    wp_buf_free(&b);
    wp_buf_printf(&b, "%s-%d", "x", 5);
    CHECK(strcmp(b.data, "x-5") == 0 && b.len == 3);
    wp_buf_free(&b);
}

static void test_inputs_and_base64(void) {
    wp_json *in = parse("{\"q\": {\"value\": \"AAEC\", \"mediaType\": \"image/png\"}, \"p\": \"AAE=\", "
                        "\"bad\": \"A%\", \"num\": 2, \"nul\": null}");
    CHECK(in != NULL);
    wp_bytes bytes;
    wp_error err = {NULL, NULL};
    CHECK(wp_input_bytes(in, "q", &bytes, &err) && bytes.len == 3 && bytes.data[2] == 2);
    free(bytes.data);
    CHECK(strcmp(wp_input_media_type(in, "q"), "image/png") == 0);
    CHECK(wp_input_bytes(in, "p", &bytes, &err) && bytes.len == 2 && bytes.data[1] == 1);
    free(bytes.data);
    CHECK(wp_input_bytes(in, "absent", &bytes, &err) && bytes.data == NULL);
    CHECK(!wp_input_bytes(in, "bad", &bytes, &err) && strcmp(err.code, "invalid-input") == 0);
    CHECK(!wp_input_bytes(in, "num", &bytes, &err));
    free(err.code);
    free(err.message);
    double n = 0;
    CHECK(wp_input_num(in, "num", &n) && n == 2);
    CHECK(wp_input(in, "nul") == NULL && wp_input_str(in, "num") == NULL);
    wp_json_free(in);

    wp_bytes out;
    CHECK(wp_base64_decode("aGVs\nbG8=", 9, &out) && out.len == 5 && memcmp(out.data, "hello", 5) == 0);
    free(out.data);
    CHECK(!wp_base64_decode("aGVsb", 5, &out)); /* a stray digit: 6 bits, no byte */
    CHECK(!wp_base64_decode("a", 1, &out));
    CHECK(!wp_base64_decode("aGVs=bG8", 8, &out));
}

static process_string_t owned(const char *s) {
    /* Like the host's arguments: allocated, owned by the callee. */
    process_string_t str = {malloc(strlen(s)), strlen(s)};
    memcpy(str.ptr, s, strlen(s));
    return str;
}

static void test_exports(void) {
    process_string_t description;
    exports_process_describe(&description);
    CHECK(description.len == strlen("{\"id\": \"test\"}"));
    process_string_free(&description);

    process_string_t inputs = owned("{\"text\": \"h\\u00e9\"}");
    process_list_output_t outputs = {NULL, 0};
    process_process_error_t error;
    CHECK(exports_process_execute(&inputs, &outputs, &error));
    CHECK(outputs.len == 2);
    CHECK(outputs.ptr[0].value.tag == WASMPROC_PROCESS_TYPES_VALUE_JSON);
    CHECK(outputs.ptr[0].value.val.json.len == 5 && memcmp(outputs.ptr[0].value.val.json.ptr, "\"h\xc3\xa9\"", 5) == 0);
    CHECK(!outputs.ptr[0].media_type.is_some);
    CHECK(outputs.ptr[1].value.tag == WASMPROC_PROCESS_TYPES_VALUE_BYTES && outputs.ptr[1].value.val.bytes.len == 3);
    CHECK(outputs.ptr[1].media_type.is_some && outputs.ptr[1].media_type.val.len == 10);
    CHECK(last_progress == 100);
    CHECK(strcmp(last_log, "3:echoed 3 bytes") == 0);
    process_list_output_free(&outputs);

    inputs = owned("{\"fail\": 1}");
    CHECK(!exports_process_execute(&inputs, &outputs, &error));
    CHECK(error.code.len == 9 && memcmp(error.code.ptr, "no-result", 9) == 0);
    CHECK(error.message.len == 17 && memcmp(error.message.ptr, "asked to fail (7)", 17) == 0);
    process_string_free(&error.code);
    process_string_free(&error.message);

    const char *broken[] = {"[1]", "{\"text\": ", "nope"};
    for (size_t i = 0; i < 3; i++) {
        inputs = owned(broken[i]);
        CHECK(!exports_process_execute(&inputs, &outputs, &error));
        CHECK(memcmp(error.code.ptr, "invalid-input", 13) == 0);
        process_string_free(&error.code);
        process_string_free(&error.message);
    }
}

int main(void) {
    test_parse_values();
    test_parse_errors();
    test_writing();
    test_inputs_and_base64();
    test_exports();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
