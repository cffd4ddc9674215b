/*
 * The `hello-world-c` process: the Rust `hello-world`'s contract, in C.
 *
 * Build: `./build.sh` (writes polyglot/out/hello-world-c.wasm).
 */
#include <ctype.h>

#include "wasmproc.h"

const char *wp_describe(void) {
    return "{"
           "\"id\": \"hello-world-c\", \"version\": \"0.2.0\", \"title\": \"Hello World (C)\","
           "\"description\": \"Echoes a greeting for the given name, with an optional message.\","
           "\"keywords\": [\"hello world\", \"example\", \"c\"],"
           "\"jobControlOptions\": [\"sync-execute\", \"async-execute\", \"dismiss\"],"
           "\"outputTransmission\": [\"value\", \"reference\"],"
           "\"inputs\": {"
           "  \"name\": {\"title\": \"Name\", \"description\": \"The name of the person or entity that you wish to be echoed back as an output\","
           "            \"minOccurs\": 1, \"maxOccurs\": 1, \"schema\": {\"type\": \"string\"}},"
           "  \"message\": {\"title\": \"Message\", \"description\": \"An optional message to echo as well\","
           "               \"minOccurs\": 0, \"maxOccurs\": 1, \"schema\": {\"type\": \"string\"}}"
           "},"
           "\"outputs\": {"
           "  \"echo\": {\"title\": \"Hello, world\","
           "            \"description\": \"A \\\"hello world\\\" echo with the name and (optional) message submitted for processing\","
           "            \"schema\": {\"type\": \"string\", \"contentMediaType\": \"application/json\"}}"
           "}}";
}

bool wp_execute(const wp_json *inputs, wp_outputs *out, wp_error *err) {
    const char *name = wp_input_str(inputs, "name");
    if (!name) return wp_fail(err, "invalid-input", "input 'name' is required");
    const char *message = wp_input_str(inputs, "message");

    wp_buf echo = {0};
    wp_buf_printf(&echo, "Hello %s! %s", name, message ? message : "");
    /* Trim trailing whitespace, like the Rust version's trim_end(). */
    while (echo.len > 0 && isspace((unsigned char)echo.data[echo.len - 1])) echo.data[--echo.len] = '\0';

    wp_output_str(out, "echo", echo.data);
    wp_buf_free(&echo);
    return true;
}
