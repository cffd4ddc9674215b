/*
 * A wasmproc process in C: copy this folder and edit.
 *
 * Build: ./build.sh   (writes my-process.wasm here)
 */
#include <ctype.h>

#include "wasmproc.h"

/* The OGC process description: the host validates every request's inputs
 * against these JSON Schemas before wp_execute runs. */
const char *wp_describe(void) {
    return "{"
           "\"id\": \"my-process\", \"version\": \"0.1.0\", \"title\": \"My process\","
           "\"description\": \"Counts the words of a text.\","
           "\"jobControlOptions\": [\"sync-execute\", \"async-execute\", \"dismiss\"],"
           "\"inputs\": {"
           "  \"text\": {\"title\": \"Text\", \"schema\": {\"type\": \"string\"}},"
           "  \"minLength\": {\"title\": \"Shortest word counted\", \"minOccurs\": 0,"
           "                 \"schema\": {\"type\": \"integer\", \"minimum\": 1, \"default\": 1}}"
           "},"
           "\"outputs\": {\"words\": {\"title\": \"Number of words\", \"schema\": {\"type\": \"integer\"}}}"
           "}";
}

bool wp_execute(const wp_json *inputs, wp_outputs *out, wp_error *err) {
    const char *text = wp_input_str(inputs, "text");
    if (!text) return wp_fail(err, "invalid-input", "input 'text' is required");
    double min_length = 1;
    wp_input_num(inputs, "minLength", &min_length);

    wp_progress(10, "splitting");
    size_t words = 0, length = 0;
    for (const char *p = text;; p++) {
        if (*p && !isspace((unsigned char)*p)) {
            length++;
            continue;
        }
        if (length > 0 && (double)length >= min_length) words++;
        length = 0;
        if (!*p) break;
    }
    if (words == 0) {
        /* A process error: the job fails with this code and message. */
        return wp_fail(err, "no-result", "no word is that long");
    }
    wp_log(WP_INFO, "%zu words", words);
    wp_output_num(out, "words", (double)words);
    return true;
}
