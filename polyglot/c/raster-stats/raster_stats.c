/*
 * The `raster-stats-c` process: statistics, a histogram and a CRC-32 of a
 * raster band given as raw little-endian samples (uint8, int16, uint16 or
 * float32), plus the band stretched to 8 bits as a binary output.
 *
 * Build: `./build.sh` (writes polyglot/out/raster-stats-c.wasm).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wasmproc.h"

const char *wp_describe(void) {
    return "{"
           "\"id\": \"raster-stats-c\", \"version\": \"0.1.0\", \"title\": \"Raster band statistics (C)\","
           "\"description\": \"Min, max, mean, standard deviation, histogram and CRC-32 of a raster band of raw "
           "little-endian samples, and the band linearly stretched to 8 bits.\","
           "\"keywords\": [\"raster\", \"statistics\", \"c\"],"
           "\"jobControlOptions\": [\"sync-execute\", \"async-execute\", \"dismiss\"],"
           "\"inputs\": {"
           "  \"raster\": {\"title\": \"Samples\", \"description\": \"width x height samples, row by row, base64\","
           "              \"schema\": {\"type\": \"string\", \"contentEncoding\": \"base64\","
           "                         \"contentMediaType\": \"application/octet-stream\"}},"
           "  \"width\": {\"schema\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 65536}},"
           "  \"height\": {\"schema\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 65536}},"
           "  \"sampleType\": {\"minOccurs\": 0, \"schema\": {\"type\": \"string\","
           "                  \"enum\": [\"uint8\", \"int16\", \"uint16\", \"float32\"], \"default\": \"uint8\"}},"
           "  \"nodata\": {\"minOccurs\": 0, \"description\": \"Samples equal to this value are ignored\","
           "              \"schema\": {\"type\": \"number\"}},"
           "  \"bins\": {\"minOccurs\": 0, \"schema\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 1024,"
           "            \"default\": 16}}"
           "},"
           "\"outputs\": {"
           "  \"statistics\": {\"title\": \"Band statistics\", \"schema\": {\"type\": \"object\","
           "                  \"contentMediaType\": \"application/json\"}},"
           "  \"stretched\": {\"title\": \"The band stretched to 0..255 (nodata is 0)\","
           "                 \"schema\": {\"type\": \"string\", \"contentEncoding\": \"binary\","
           "                            \"contentMediaType\": \"application/octet-stream\"}}"
           "}}";
}

typedef enum { UINT8, INT16, UINT16, FLOAT32 } sample_type;

static size_t sample_size(sample_type t) { return t == UINT8 ? 1 : t == FLOAT32 ? 4 : 2; }

static double sample_at(const uint8_t *data, size_t i, sample_type t) {
    switch (t) {
    case UINT8: return data[i];
    case INT16: return (int16_t)(uint16_t)(data[2 * i] | data[2 * i + 1] << 8);
    case UINT16: return (uint16_t)(data[2 * i] | data[2 * i + 1] << 8);
    case FLOAT32: {
        uint32_t bits = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                        (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    }
    return 0;
}

/* CRC-32 (IEEE 802.3, as zlib's crc32), bitwise: small and plenty fast. */
static uint32_t crc32(const uint8_t *data, size_t len) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

bool wp_execute(const wp_json *inputs, wp_outputs *out, wp_error *err) {
    double width_d, height_d;
    if (!wp_input_num(inputs, "width", &width_d) || !wp_input_num(inputs, "height", &height_d))
        return wp_fail(err, "invalid-input", "inputs 'width' and 'height' are required");
    size_t width = (size_t)width_d, height = (size_t)height_d;

    sample_type type = UINT8;
    const char *type_name = wp_input_str(inputs, "sampleType");
    if (!type_name || strcmp(type_name, "uint8") == 0) type_name = "uint8", type = UINT8;
    else if (strcmp(type_name, "int16") == 0) type = INT16;
    else if (strcmp(type_name, "uint16") == 0) type = UINT16;
    else if (strcmp(type_name, "float32") == 0) type = FLOAT32;
    else return wp_fail(err, "invalid-input", "unknown sampleType '%s'", type_name);

    double nodata = 0, bins_d = 16;
    bool has_nodata = wp_input_num(inputs, "nodata", &nodata);
    wp_input_num(inputs, "bins", &bins_d);
    size_t bins = bins_d < 1 ? 1 : (size_t)bins_d;

    wp_bytes raster;
    if (!wp_input_bytes(inputs, "raster", &raster, err)) return false;
    if (!raster.data) return wp_fail(err, "invalid-input", "input 'raster' is required");
    /* 64-bit: width x height x 4 overflows a 32-bit size_t. */
    uint64_t expected = (uint64_t)width * height * sample_size(type);
    if ((uint64_t)raster.len != expected) {
        bool ok = wp_fail(err, "invalid-input",
                          "raster has %zu bytes, expected %zu x %zu %s samples = %llu bytes",
                          raster.len, width, height, type_name, (unsigned long long)expected);
        free(raster.data);
        return ok;
    }
    size_t count = width * height; /* fits: the bytes are in memory */

    /* Pass 1: min, max, mean and variance (Welford), skipping nodata and NaN. */
    size_t valid = 0;
    double min = INFINITY, max = -INFINITY, mean = 0, m2 = 0, sum = 0;
    for (size_t row = 0; row < height; row++) {
        for (size_t i = row * width; i < (row + 1) * width; i++) {
            double v = sample_at(raster.data, i, type);
            if (isnan(v) || (has_nodata && v == nodata)) continue;
            valid++;
            sum += v;
            if (v < min) min = v;
            if (v > max) max = v;
            double delta = v - mean;
            mean += delta / (double)valid;
            m2 += delta * (v - mean);
        }
        if (height >= 8 && row % (height / 4) == 0) wp_progress((int)(row * 50 / height), "statistics");
    }
    if (valid == 0) {
        free(raster.data);
        return wp_fail(err, "no-result", "every one of the %zu samples is nodata", count);
    }
    wp_progress(50, "histogram and stretch");

    /* Pass 2: histogram and the 8-bit stretch. */
    size_t *histogram = calloc(bins, sizeof *histogram);
    uint8_t *stretched = malloc(count);
    if (!histogram || !stretched) abort();
    double range = max - min;
    for (size_t i = 0; i < count; i++) {
        double v = sample_at(raster.data, i, type);
        if (isnan(v) || (has_nodata && v == nodata)) {
            stretched[i] = 0;
            continue;
        }
        double t = range > 0 ? (v - min) / range : 0;
        size_t bin = (size_t)(t * (double)bins);
        histogram[bin < bins ? bin : bins - 1]++;
        stretched[i] = (uint8_t)lround(t * 255.0);
    }

    wp_buf json = {0};
    wp_buf_printf(&json, "{\"width\": %zu, \"height\": %zu, \"sampleType\": ", width, height);
    wp_buf_json_str(&json, type_name);
    wp_buf_printf(&json, ", \"count\": %zu, \"nodataCount\": %zu, \"min\": ", valid, count - valid);
    wp_buf_json_num(&json, min);
    wp_buf_puts(&json, ", \"max\": ");
    wp_buf_json_num(&json, max);
    wp_buf_puts(&json, ", \"sum\": ");
    wp_buf_json_num(&json, sum);
    wp_buf_puts(&json, ", \"mean\": ");
    wp_buf_json_num(&json, mean);
    wp_buf_puts(&json, ", \"stddev\": ");
    wp_buf_json_num(&json, sqrt(m2 / (double)valid));
    wp_buf_puts(&json, ", \"histogram\": [");
    for (size_t b = 0; b < bins; b++) wp_buf_printf(&json, b ? ", %zu" : "%zu", histogram[b]);
    wp_buf_printf(&json, "], \"crc32\": \"%08x\"}", (unsigned)crc32(raster.data, raster.len));

    wp_output_json(out, "statistics", json.data, NULL);
    wp_output_bytes(out, "stretched", stretched, count, "application/octet-stream");
    wp_log(WP_INFO, "%zu valid samples of %zu, range %g..%g", valid, count, min, max);

    wp_buf_free(&json);
    free(histogram);
    free(stretched);
    free(raster.data);
    return true;
}
