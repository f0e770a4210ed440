/*  zf_id: deterministic message ids. See zf_id.h and schemas/zfp.md. */
#include "zf_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const uint8_t s_key[16] = { 'z', 'f', 'l', 'o', 'w', '/', 'i', 'd', '/', 'v', '1' };

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL (v1, 13);                                                                        \
        v1 ^= v0;                                                                                  \
        v0 = ROTL (v0, 32);                                                                        \
        v2 += v3;                                                                                  \
        v3 = ROTL (v3, 16);                                                                        \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL (v3, 21);                                                                        \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL (v1, 17);                                                                        \
        v1 ^= v2;                                                                                  \
        v2 = ROTL (v2, 32);                                                                        \
    } while (0)

static uint64_t
s_le64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
s_put_le64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

void
zf_siphash128 (const uint8_t key[16], const void *data, size_t size, uint8_t out[16])
{
    const uint8_t *in = (const uint8_t *) data;
    uint64_t k0 = s_le64 (key), k1 = s_le64 (key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    v1 ^= 0xee; // the 128-bit variant

    size_t whole = size - size % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = s_le64 (in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t) size << 56;
    for (size_t i = 0; i < size % 8; i++)
        last |= (uint64_t) in[whole + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;

    v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        SIPROUND;
    s_put_le64 (out, v0 ^ v1 ^ v2 ^ v3);
    v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        SIPROUND;
    s_put_le64 (out + 8, v0 ^ v1 ^ v2 ^ v3);
}

static void
s_put_be (uint8_t *p, uint64_t v, int size)
{
    for (int i = size - 1; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}

zf_id_t
zf_id_child (const zf_id_t *parent, uint32_t index)
{
    uint8_t input[1 + ZF_ID_SIZE + 4] = { 'c' };
    memcpy (input + 1, parent->bytes, ZF_ID_SIZE);
    s_put_be (input + 1 + ZF_ID_SIZE, index, 4);
    zf_id_t id;
    zf_siphash128 (s_key, input, sizeof input, id.bytes);
    return id;
}

zf_id_t
zf_id_output (const zf_id_t *parent, const char *group, uint32_t index)
{
    uint8_t stack[1 + ZF_ID_SIZE + 4 + 256];
    size_t len = strlen (group);
    size_t size = 1 + ZF_ID_SIZE + 4 + len;
    uint8_t *input = size <= sizeof stack ? stack : (uint8_t *) malloc (size);
    zf_id_t id = { { 0 } };
    if (!input)
        return id; // out of memory: the all-zero id, which no derivation yields
    input[0] = 'o';
    memcpy (input + 1, parent->bytes, ZF_ID_SIZE);
    s_put_be (input + 1 + ZF_ID_SIZE, index, 4);
    memcpy (input + 1 + ZF_ID_SIZE + 4, group, len);
    zf_siphash128 (s_key, input, size, id.bytes);
    if (input != stack)
        free (input);
    return id;
}

//  Hashes tag, name, a NUL and an 8-byte big-endian number.
static zf_id_t
s_named (char tag, const char *name, uint64_t number)
{
    uint8_t stack[512];
    size_t len = strlen (name);
    size_t size = len + 10;
    uint8_t *input = size <= sizeof stack ? stack : (uint8_t *) malloc (size);
    zf_id_t id = { { 0 } };
    if (!input)
        return id; // out of memory: the all-zero id, which no derivation yields
    input[0] = (uint8_t) tag;
    memcpy (input + 1, name, len);
    input[1 + len] = 0;
    s_put_be (input + 2 + len, number, 8);
    zf_siphash128 (s_key, input, size, id.bytes);
    if (input != stack)
        free (input);
    return id;
}

zf_id_t
zf_id_firing (const char *job, int64_t when_ms)
{
    return s_named ('f', job, (uint64_t) when_ms);
}

zf_id_t
zf_id_source (const char *source, uint64_t position)
{
    return s_named ('s', source, position);
}

zf_id_t
zf_id_random (void)
{
    zf_id_t id;
    size_t got = 0;
    while (got < sizeof id.bytes) {
        ssize_t rc = getrandom (id.bytes + got, sizeof id.bytes - got, 0);
        if (rc > 0)
            got += (size_t) rc;
    }
    return id;
}

char *
zf_id_format (const zf_id_t *id, char hex[ZF_ID_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ZF_ID_SIZE; i++) {
        hex[2 * i] = digits[id->bytes[i] >> 4];
        hex[2 * i + 1] = digits[id->bytes[i] & 15];
    }
    hex[2 * ZF_ID_SIZE] = 0;
    return hex;
}

static int
s_hexdigit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
zf_id_parse (zf_id_t *id, const char *text)
{
    if (!text || strlen (text) != 2 * ZF_ID_SIZE)
        return -1;
    for (int i = 0; i < ZF_ID_SIZE; i++) {
        int hi = s_hexdigit (text[2 * i]), lo = s_hexdigit (text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        id->bytes[i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

bool
zf_id_eq (const zf_id_t *a, const zf_id_t *b)
{
    return memcmp (a->bytes, b->bytes, ZF_ID_SIZE) == 0;
}

bool
zf_id_is_zero (const zf_id_t *id)
{
    static const zf_id_t zero;
    return zf_id_eq (id, &zero);
}
