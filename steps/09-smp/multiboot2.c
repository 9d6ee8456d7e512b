/*
 * GRUB hands over a list of tags: a total size, then tags of {type, size, payload}, each
 * starting on an 8-byte boundary, ending with a tag of type 0.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "multiboot2.h"
#include "string.h"

struct multiboot2_info {
    uint32_t total_size;
    uint32_t reserved;
};

static const struct multiboot2_info *info;

void multiboot2_init(uint32_t info_address)
{
    info = (const struct multiboot2_info *)(uintptr_t)info_address;
}

/* The frame allocator must not hand out the memory that holds this information. */
uint64_t multiboot2_info_address(void)
{
    return (uint64_t)(uintptr_t)info;
}

uint64_t multiboot2_info_size(void)
{
    return info->total_size;
}

static const struct multiboot2_tag *next_tag(const struct multiboot2_tag *tag)
{
    uintptr_t next = ((uintptr_t)tag + tag->size + 7) & ~(uintptr_t)7;
    return (const struct multiboot2_tag *)next;
}

const struct multiboot2_tag *multiboot2_find_tag(uint32_t type)
{
    const struct multiboot2_tag *tag = (const struct multiboot2_tag *)(info + 1);

    for (; tag->type != MULTIBOOT2_TAG_END; tag = next_tag(tag))
        if (tag->type == type)
            return tag;
    return NULL;
}

const char *multiboot2_cmdline(void)
{
    const struct multiboot2_tag *tag = multiboot2_find_tag(MULTIBOOT2_TAG_CMDLINE);
    return tag ? ((const struct multiboot2_tag_string *)tag)->string : "";
}

/* The index-th module tag, in the order grub.cfg loads them; false when there are fewer. */
bool multiboot2_module(int index, struct multiboot2_module *module)
{
    const struct multiboot2_tag *tag = (const struct multiboot2_tag *)(info + 1);

    for (; tag->type != MULTIBOOT2_TAG_END; tag = next_tag(tag)) {
        if (tag->type != MULTIBOOT2_TAG_MODULE || index-- > 0)
            continue;
        const struct multiboot2_tag_module *m = (const struct multiboot2_tag_module *)tag;
        *module = (struct multiboot2_module){ .data = (const void *)(uintptr_t)m->start,
                                              .size = m->end - m->start, .name = m->string };
        return true;
    }
    return false;
}

/* mkiso.sh gives each module its file name as its string, so a name finds the file. */
bool multiboot2_find_module(const char *name, struct multiboot2_module *module)
{
    for (int i = 0; multiboot2_module(i, module); i++)
        if (strcmp(module->name, name) == 0)
            return true;
    return false;
}
