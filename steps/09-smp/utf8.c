/*
 * UTF-8 as the Unicode standard defines it (chapter 3, table 3-7): a code point is written in
 * the fewest bytes possible, surrogates (U+D800-U+DFFF) never appear, and nothing goes past
 * U+10FFFF. The table is stated as byte ranges, so checking it needs no decoding at all.
 */
#include "utf8.h"

/*
 * The length of the well-formed sequence at the start of bytes (1 to 4), or 0 if there is
 * none: a stray continuation byte, an overlong form, a surrogate, a code point above U+10FFFF,
 * or a sequence that the end of the bytes cuts short.
 */
size_t utf8_sequence_length(const unsigned char *bytes, size_t available)
{
    unsigned char lead, second_min = 0x80, second_max = 0xbf;
    size_t length;

    if (available == 0)
        return 0;
    lead = bytes[0];
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2;
    else if (lead >= 0xe0 && lead <= 0xef)
        length = 3;
    else if (lead >= 0xf0 && lead <= 0xf4)
        length = 4;
    else
        return 0;   /* 0x80-0xc1 and 0xf5-0xff never start a sequence */

    /* Only the second byte's range depends on the lead: these narrow it. */
    if (lead == 0xe0)
        second_min = 0xa0;   /* below: overlong, would fit in two bytes */
    else if (lead == 0xed)
        second_max = 0x9f;   /* above: U+D800-U+DFFF, surrogates */
    else if (lead == 0xf0)
        second_min = 0x90;   /* below: overlong, would fit in three bytes */
    else if (lead == 0xf4)
        second_max = 0x8f;   /* above: beyond U+10FFFF */

    if (available < length || bytes[1] < second_min || bytes[1] > second_max)
        return 0;
    for (size_t i = 2; i < length; i++)
        if (bytes[i] < 0x80 || bytes[i] > 0xbf)
            return 0;
    return length;
}

/* Write code_point (at most U+10FFFF, not a surrogate) to out; returns how many bytes. */
size_t utf8_encode(uint32_t code_point, unsigned char *out)
{
    if (code_point < 0x80) {
        out[0] = (unsigned char)code_point;
        return 1;
    }
    if (code_point < 0x800) {
        out[0] = (unsigned char)(0xc0 | code_point >> 6);
        out[1] = (unsigned char)(0x80 | (code_point & 0x3f));
        return 2;
    }
    if (code_point < 0x10000) {
        out[0] = (unsigned char)(0xe0 | code_point >> 12);
        out[1] = (unsigned char)(0x80 | (code_point >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (code_point & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | code_point >> 18);
    out[1] = (unsigned char)(0x80 | (code_point >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (code_point >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (code_point & 0x3f));
    return 4;
}
