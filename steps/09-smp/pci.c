/*
 * PCI: finding the devices on the machine and what they need.
 *
 * Every PCI function has a 256-byte configuration space holding its IDs, class and Base Address
 * Registers (BARs). Configuration mechanism #1 reaches it through two I/O ports: write the
 * function's bus/slot/function and a register offset to 0xCF8, then read or write the register
 * at 0xCFC. Enumeration walks bus 0, and every bus behind a PCI-to-PCI bridge, recursively.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kprintf.h"
#include "pci.h"
#include "x86.h"

#define CONFIG_ADDRESS 0xCF8
#define CONFIG_DATA    0xCFC
#define CONFIG_ENABLE  0x80000000u

#define REG_VENDOR_ID      0x00
#define REG_COMMAND        0x04
#define REG_STATUS         0x06
#define REG_CLASS          0x08
#define REG_HEADER_TYPE    0x0E
#define REG_BAR0           0x10
#define REG_SECONDARY_BUS  0x19
#define REG_CAPABILITIES   0x34
#define REG_INTERRUPT_LINE 0x3C

#define COMMAND_IO           (1 << 0)
#define COMMAND_MEMORY       (1 << 1)
#define COMMAND_BUS_MASTER   (1 << 2)
#define STATUS_CAPABILITIES  (1 << 4)
#define HEADER_MULTIFUNCTION 0x80
#define HEADER_KIND_MASK     0x7F
#define HEADER_BRIDGE        0x01
#define NO_DEVICE            0xFFFF
#define SLOTS_PER_BUS        32
#define FUNCTIONS_PER_SLOT   8
#define MAX_DRIVERS          8

static struct pci_device devices[PCI_MAX_DEVICES];
static size_t device_count;
static const struct pci_driver *drivers[MAX_DRIVERS];
static size_t driver_count;

static void select_register(uint8_t bus, uint8_t slot, uint8_t function, uint8_t offset)
{
    outl(CONFIG_ADDRESS, CONFIG_ENABLE | (uint32_t)bus << 16 | (uint32_t)slot << 11 |
                         (uint32_t)function << 8 | (offset & 0xFC));
}

static uint32_t read32_at(uint8_t bus, uint8_t slot, uint8_t function, uint8_t offset)
{
    select_register(bus, slot, function, offset);
    return inl(CONFIG_DATA);
}

uint32_t pci_config_read32(const struct pci_device *d, uint8_t offset)
{
    return read32_at(d->bus, d->slot, d->function, offset);
}

static void pci_config_write32(const struct pci_device *d, uint8_t offset, uint32_t value)
{
    select_register(d->bus, d->slot, d->function, offset);
    outl(CONFIG_DATA, value);
}

/* 16-bit registers are reached at their offset within the selected 32-bit register. */
uint16_t pci_config_read16(const struct pci_device *d, uint8_t offset)
{
    select_register(d->bus, d->slot, d->function, offset);
    return inw(CONFIG_DATA + (offset & 2));
}

void pci_config_write16(const struct pci_device *d, uint8_t offset, uint16_t value)
{
    select_register(d->bus, d->slot, d->function, offset);
    outw(CONFIG_DATA + (offset & 2), value);
}

static uint8_t pci_config_read8(const struct pci_device *d, uint8_t offset)
{
    return (uint8_t)(pci_config_read32(d, offset) >> ((offset & 3) * 8));
}

/* A device reads memory itself (DMA) only once it is allowed to master the bus. */
void pci_enable_bus_mastering(const struct pci_device *d)
{
    pci_config_write16(d, REG_COMMAND, pci_config_read16(d, REG_COMMAND) | COMMAND_BUS_MASTER);
}

/*
 * A BAR's size is found by writing all ones and reading back which address bits stuck: the
 * device hard-wires the bits below its size to zero. Decoding is switched off meanwhile, so
 * the device does not answer at the nonsense address for a moment.
 */
static uint32_t probe_bar_mask(const struct pci_device *d, uint8_t offset)
{
    uint32_t original = pci_config_read32(d, offset);
    uint32_t mask;

    pci_config_write32(d, offset, 0xFFFFFFFF);
    mask = pci_config_read32(d, offset);
    pci_config_write32(d, offset, original);
    return mask;
}

/* Returns how many BAR slots this BAR used: a 64-bit BAR takes two. */
static int decode_bar(const struct pci_device *d, int index, struct pci_bar *bar)
{
    uint8_t offset = REG_BAR0 + index * 4;
    uint32_t low = pci_config_read32(d, offset);
    uint32_t mask = probe_bar_mask(d, offset);

    if (mask == 0)
        return 1;
    if (low & 1) {
        bar->kind = PCI_BAR_IO;
        bar->address = low & ~3u;
        bar->size = (uint16_t)(~(mask & ~3u) + 1);
        return 1;
    }
    bar->prefetchable = low & 8;
    bar->address = low & ~0xFu;
    if (((low >> 1) & 3) == 2 && index + 1 < PCI_BAR_COUNT) {
        uint64_t high_mask = probe_bar_mask(d, offset + 4);
        uint64_t full_mask = high_mask << 32 | (mask & ~0xFu);
        bar->kind = PCI_BAR_MEMORY64;
        bar->address |= (uint64_t)pci_config_read32(d, offset + 4) << 32;
        bar->size = ~full_mask + 1;
        return 2;
    }
    bar->kind = PCI_BAR_MEMORY32;
    bar->size = (uint32_t)(~(mask & ~0xFu) + 1);
    return 1;
}

static void decode_bars(struct pci_device *d)
{
    uint16_t command = pci_config_read16(d, REG_COMMAND);
    /* A bridge header has only two BARs; the rest of its header is bus numbers and windows. */
    int bar_count = (d->header_type & HEADER_KIND_MASK) == HEADER_BRIDGE ? 2 : PCI_BAR_COUNT;

    pci_config_write16(d, REG_COMMAND, command & ~(COMMAND_IO | COMMAND_MEMORY));
    for (int i = 0; i < bar_count; )
        i += decode_bar(d, i, &d->bars[i]);
    pci_config_write16(d, REG_COMMAND, command);
}

/* Capabilities form a linked list in configuration space; the bound guards against loops. */
static void read_capabilities(struct pci_device *d)
{
    uint8_t pointer;

    if (!(pci_config_read16(d, REG_STATUS) & STATUS_CAPABILITIES))
        return;
    pointer = pci_config_read8(d, REG_CAPABILITIES) & 0xFC;
    for (int hops = 0; pointer && hops < 48; hops++) {
        if (d->capability_count < PCI_MAX_CAPABILITIES)
            d->capabilities[d->capability_count++] = pci_config_read8(d, pointer);
        pointer = pci_config_read8(d, pointer + 1) & 0xFC;
    }
}

static void scan_bus(uint8_t bus);

static void add_function(uint8_t bus, uint8_t slot, uint8_t function)
{
    struct pci_device *d;
    uint32_t class_register;

    if (device_count == PCI_MAX_DEVICES) {
        kprintf("pci: more than %d functions, ignoring %02x:%02x.%x\n", PCI_MAX_DEVICES, bus,
                slot, function);
        return;
    }
    d = &devices[device_count++];
    *d = (struct pci_device){ .bus = bus, .slot = slot, .function = function };
    d->vendor_id = pci_config_read16(d, REG_VENDOR_ID);
    d->device_id = pci_config_read16(d, REG_VENDOR_ID + 2);
    class_register = pci_config_read32(d, REG_CLASS);
    d->class_code = class_register >> 24;
    d->subclass = class_register >> 16;
    d->prog_if = class_register >> 8;
    d->revision = class_register;
    d->header_type = pci_config_read8(d, REG_HEADER_TYPE);
    d->interrupt_line = pci_config_read8(d, REG_INTERRUPT_LINE);
    decode_bars(d);
    read_capabilities(d);
    /* Firmware numbers buses depth first, so a configured bridge always leads further up. */
    if ((d->header_type & HEADER_KIND_MASK) == HEADER_BRIDGE) {
        uint8_t secondary = pci_config_read8(d, REG_SECONDARY_BUS);
        if (secondary > bus)
            scan_bus(secondary);
    }
}

static bool function_exists(uint8_t bus, uint8_t slot, uint8_t function)
{
    return (read32_at(bus, slot, function, REG_VENDOR_ID) & 0xFFFF) != NO_DEVICE;
}

static void scan_slot(uint8_t bus, uint8_t slot)
{
    uint8_t header_type;

    if (!function_exists(bus, slot, 0))
        return;
    add_function(bus, slot, 0);
    header_type = read32_at(bus, slot, 0, REG_HEADER_TYPE & 0xFC) >> 16;
    if (!(header_type & HEADER_MULTIFUNCTION))
        return;
    for (uint8_t function = 1; function < FUNCTIONS_PER_SLOT; function++)
        if (function_exists(bus, slot, function))
            add_function(bus, slot, function);
}

static void scan_bus(uint8_t bus)
{
    for (uint8_t slot = 0; slot < SLOTS_PER_BUS; slot++)
        scan_slot(bus, slot);
}

void pci_init(void)
{
    device_count = 0;
    scan_bus(0);
    kprintf("pci: %zu functions\n", device_count);
}

static const char *bar_kind_name(const struct pci_bar *bar)
{
    switch (bar->kind) {
    case PCI_BAR_IO:       return "io   ";
    case PCI_BAR_MEMORY32: return "mem32";
    case PCI_BAR_MEMORY64: return "mem64";
    default:               return "none ";
    }
}

static void print_device(const struct pci_device *d)
{
    kprintf("pci %02x:%02x.%x %04x:%04x [%02x%02x] %s\n", d->bus, d->slot, d->function,
            d->vendor_id, d->device_id, d->class_code, d->subclass,
            pci_class_name(d->class_code, d->subclass));
    for (int i = 0; i < PCI_BAR_COUNT; i++) {
        const struct pci_bar *bar = &d->bars[i];
        if (bar->kind != PCI_BAR_NONE)
            kprintf("pci %02x:%02x.%x   BAR%d %s 0x%016lx size 0x%lx%s\n", d->bus, d->slot,
                    d->function, i, bar_kind_name(bar), bar->address, bar->size,
                    bar->prefetchable ? " prefetchable" : "");
    }
    if (d->capability_count == 0)
        return;
    kprintf("pci %02x:%02x.%x   caps", d->bus, d->slot, d->function);
    for (size_t i = 0; i < d->capability_count; i++)
        kprintf(" %s(%02x)", pci_capability_name(d->capabilities[i]), d->capabilities[i]);
    kprintf("\n");
}

void pci_print_devices(void)
{
    for (size_t i = 0; i < device_count; i++)
        print_device(&devices[i]);
}

void pci_register_driver(const struct pci_driver *driver)
{
    if (driver_count == MAX_DRIVERS) {
        kprintf("pci: driver table full, %s not registered\n", driver->name);
        return;
    }
    drivers[driver_count++] = driver;
}

static const struct pci_driver *find_driver(const struct pci_device *d)
{
    for (size_t i = 0; i < driver_count; i++)
        if (drivers[i]->vendor_id == d->vendor_id && drivers[i]->device_id == d->device_id)
            return drivers[i];
    return NULL;
}

/* Match by IDs, never by slot: the same card may sit anywhere, behind any bridge. */
void pci_probe_drivers(void)
{
    for (size_t i = 0; i < device_count; i++) {
        struct pci_device *d = &devices[i];
        const struct pci_driver *driver = find_driver(d);
        if (!driver)
            continue;
        kprintf("pci %02x:%02x.%x driver %s\n", d->bus, d->slot, d->function, driver->name);
        driver->probe(d);
    }
    kprintf("pci: %zu drivers registered\n", driver_count);
}
