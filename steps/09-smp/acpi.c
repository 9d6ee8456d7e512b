/*
 * ACPI: the firmware's description of the machine, as a tree of tables in memory. GRUB found
 * the root (the RSDP) and copied it into a Multiboot2 tag. The RSDP points to the RSDT (32-bit
 * table addresses) and, from ACPI 2.0, to the XSDT (64-bit addresses); both list every other
 * table. The one this kernel needs is the MADT, signature "APIC": one entry per processor's
 * local APIC, per I/O APIC, and per ISA interrupt that is wired differently from the PC's.
 *
 * The tables sit in memory the memory map calls reserved or ACPI, below 4 GiB on every PC,
 * so the identity map already covers them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "acpi.h"
#include "kprintf.h"
#include "multiboot2.h"
#include "panic.h"
#include "string.h"

struct rsdp {
    char signature[8];             /* "RSD PTR " */
    uint8_t checksum;              /* over the first 20 bytes (the ACPI 1.0 structure) */
    char oem_id[6];
    uint8_t revision;              /* 0 for ACPI 1.0, 2 from ACPI 2.0 */
    uint32_t rsdt_address;
    uint32_t length;               /* from here on only when revision >= 2 */
    uint64_t xsdt_address;
    uint8_t extended_checksum;     /* over all length bytes */
    uint8_t reserved[3];
} __attribute__((packed));

#define RSDP_V1_LENGTH 20

/* Every table other than the RSDP starts with this header. */
struct sdt_header {
    char signature[4];
    uint32_t length;               /* of the whole table, header included */
    uint8_t revision;
    uint8_t checksum;              /* all length bytes sum to zero */
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

struct madt {
    struct sdt_header header;
    uint32_t local_apic_address;
    uint32_t flags;
    uint8_t entries[];
} __attribute__((packed));

#define MADT_PCAT_COMPAT 1u        /* flags: the machine also has the two 8259 PICs */

enum madt_entry_type {
    MADT_LOCAL_APIC = 0,
    MADT_IO_APIC = 1,
    MADT_OVERRIDE = 2,
    MADT_LOCAL_APIC_ADDRESS = 5,
};

struct madt_entry {
    uint8_t type;
    uint8_t length;
} __attribute__((packed));

struct madt_local_apic {
    struct madt_entry entry;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;
} __attribute__((packed));

/* A processor is usable when enabled; "online capable" ones could be hot-added later. */
#define LOCAL_APIC_ENABLED 1u

struct madt_io_apic {
    struct madt_entry entry;
    uint8_t id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
} __attribute__((packed));

struct madt_override {
    struct madt_entry entry;
    uint8_t bus;                   /* always 0, ISA */
    uint8_t source;
    uint32_t gsi;
    uint16_t flags;
} __attribute__((packed));

struct madt_local_apic_address {
    struct madt_entry entry;
    uint16_t reserved;
    uint64_t address;
} __attribute__((packed));

static struct acpi_madt_info madt_info;

static uint8_t checksum(const void *data, size_t length)
{
    const uint8_t *bytes = data;
    uint8_t sum = 0;

    for (size_t i = 0; i < length; i++)
        sum += bytes[i];
    return sum;
}

/* Prefer the ACPI 2.0 copy: its XSDT is the table newer firmware keeps up to date. */
static const struct rsdp *find_rsdp(void)
{
    const struct multiboot2_tag *tag = multiboot2_find_tag(MULTIBOOT2_TAG_ACPI_NEW);
    const struct rsdp *rsdp;

    if (!tag)
        tag = multiboot2_find_tag(MULTIBOOT2_TAG_ACPI_OLD);
    if (!tag)
        panic("acpi: the boot loader passed no RSDP");
    rsdp = (const struct rsdp *)(tag + 1);
    if (memcmp(rsdp->signature, "RSD PTR ", 8) != 0 || checksum(rsdp, RSDP_V1_LENGTH) != 0)
        panic("acpi: the RSDP is not valid");
    if (rsdp->revision >= 2 && checksum(rsdp, rsdp->length) != 0)
        panic("acpi: the RSDP's extended checksum is wrong");
    return rsdp;
}

/* ACPI names are fixed-size fields without a terminator; kprintf wants C strings. */
static const char *name(char *buffer, const char *field, size_t length)
{
    memcpy(buffer, field, length);
    buffer[length] = '\0';
    return buffer;
}

/* The tables' addresses are physical; the identity map makes them pointers as they are. */
static const struct sdt_header *table_at(uint64_t address)
{
    const struct sdt_header *table = (const struct sdt_header *)address;
    char signature[5];

    if (checksum(table, table->length) != 0) {
        kprintf("acpi: table %s at 0x%lx has a bad checksum, ignored\n",
                name(signature, table->signature, 4), address);
        return NULL;
    }
    return table;
}

/*
 * Walk the RSDT or XSDT for a table with this signature. XSDT entries are 8 bytes at offset
 * 36, so they are not 8-byte aligned: copy each one out rather than dereference it.
 */
static const struct sdt_header *find_table(const struct rsdp *rsdp, const char *signature)
{
    bool wide = rsdp->revision >= 2 && rsdp->xsdt_address != 0;
    const struct sdt_header *root = table_at(wide ? rsdp->xsdt_address : rsdp->rsdt_address);
    size_t entry_size = wide ? 8 : 4;

    if (!root)
        panic("acpi: the %s is damaged", wide ? "XSDT" : "RSDT");
    for (size_t offset = sizeof(*root); offset + entry_size <= root->length;
         offset += entry_size) {
        uint64_t address = 0;
        memcpy(&address, (const uint8_t *)root + offset, entry_size);
        const struct sdt_header *table = table_at(address);
        if (table && memcmp(table->signature, signature, 4) == 0)
            return table;
    }
    return NULL;
}

static void add_cpu(const struct madt_local_apic *entry)
{
    if (!(entry->flags & LOCAL_APIC_ENABLED))
        return;
    if (madt_info.cpu_count == ACPI_MAX_CPUS) {
        kprintf("acpi: more than %d CPUs, ignoring APIC id %u\n", ACPI_MAX_CPUS, entry->apic_id);
        return;
    }
    madt_info.cpu_apic_ids[madt_info.cpu_count++] = entry->apic_id;
}

static void add_io_apic(const struct madt_io_apic *entry)
{
    if (madt_info.io_apic_count < ACPI_MAX_IO_APICS)
        madt_info.io_apics[madt_info.io_apic_count++] =
            (struct acpi_io_apic){ entry->id, entry->address, entry->gsi_base };
}

static void add_override(const struct madt_override *entry)
{
    if (madt_info.override_count < ACPI_MAX_OVERRIDES)
        madt_info.overrides[madt_info.override_count++] =
            (struct acpi_override){ entry->source, entry->gsi, entry->flags };
}

static void parse_madt(const struct madt *madt)
{
    const uint8_t *end = (const uint8_t *)madt + madt->header.length;
    const struct madt_entry *entry;

    madt_info.local_apic_address = madt->local_apic_address;
    madt_info.has_8259 = madt->flags & MADT_PCAT_COMPAT;
    for (const uint8_t *p = madt->entries; p + sizeof(*entry) <= end; p += entry->length) {
        entry = (const struct madt_entry *)p;
        if (entry->length < sizeof(*entry))
            panic("acpi: MADT entry of length %u", entry->length);
        if (entry->type == MADT_LOCAL_APIC)
            add_cpu((const void *)entry);
        else if (entry->type == MADT_IO_APIC)
            add_io_apic((const void *)entry);
        else if (entry->type == MADT_OVERRIDE)
            add_override((const void *)entry);
        else if (entry->type == MADT_LOCAL_APIC_ADDRESS)
            madt_info.local_apic_address = ((const struct madt_local_apic_address *)entry)->address;
    }
}

static void print_madt(void)
{
    kprintf("acpi: MADT: %d CPUs, APIC ids", madt_info.cpu_count);
    for (int i = 0; i < madt_info.cpu_count; i++)
        kprintf(" %u", madt_info.cpu_apic_ids[i]);
    kprintf("; local APIC at 0x%lx%s\n", madt_info.local_apic_address,
            madt_info.has_8259 ? ", 8259 PICs present" : "");
    for (int i = 0; i < madt_info.io_apic_count; i++)
        kprintf("acpi: I/O APIC %u at 0x%x, interrupts from %u\n", madt_info.io_apics[i].id,
                madt_info.io_apics[i].address, madt_info.io_apics[i].gsi_base);
    for (int i = 0; i < madt_info.override_count; i++)
        kprintf("acpi: ISA IRQ %u -> interrupt %u, flags 0x%x\n", madt_info.overrides[i].source,
                madt_info.overrides[i].gsi, madt_info.overrides[i].flags);
}

void acpi_init(void)
{
    const struct rsdp *rsdp = find_rsdp();
    const struct sdt_header *madt;
    char oem[7];

    kprintf("acpi: RSDP revision %u from %s\n", rsdp->revision, name(oem, rsdp->oem_id, 6));
    madt = find_table(rsdp, "APIC");
    if (!madt)
        panic("acpi: no MADT, so no way to find the other CPUs");
    parse_madt((const struct madt *)madt);
    if (madt_info.cpu_count == 0)
        panic("acpi: the MADT lists no enabled CPU");
    print_madt();
}

const struct acpi_madt_info *acpi_madt(void)
{
    return &madt_info;
}
