/* Human-readable names for PCI class codes and capability IDs, from the PCI Code and ID
 * Assignment specification; only the ones a PC (or QEMU) is likely to show. */
#include <stddef.h>
#include <stdint.h>
#include "pci.h"

struct class_name {
    uint8_t class_code, subclass;
    const char *name;
};

static const struct class_name class_names[] = {
    { 0x01, 0x01, "IDE controller" },
    { 0x01, 0x06, "SATA controller" },
    { 0x01, 0x08, "NVMe controller" },
    { 0x01, 0x00, "SCSI controller" },
    { 0x02, 0x00, "Ethernet controller" },
    { 0x03, 0x00, "VGA controller" },
    { 0x04, 0x01, "audio device" },
    { 0x04, 0x03, "audio device" },
    { 0x06, 0x00, "host bridge" },
    { 0x06, 0x01, "ISA bridge" },
    { 0x06, 0x04, "PCI-to-PCI bridge" },
    { 0x06, 0x80, "bridge" },
    { 0x0C, 0x03, "USB controller" },
    { 0x0C, 0x05, "SMBus controller" },
    { 0x00, 0xFF, "unclassified device" },
    { 0x01, 0xFF, "mass storage controller" },
    { 0x02, 0xFF, "network controller" },
    { 0x03, 0xFF, "display controller" },
    { 0x04, 0xFF, "multimedia controller" },
    { 0x05, 0xFF, "memory controller" },
    { 0x06, 0xFF, "bridge" },
    { 0x07, 0xFF, "communication controller" },
    { 0x08, 0xFF, "system peripheral" },
    { 0x0C, 0xFF, "serial bus controller" },
    { 0x10, 0xFF, "encryption controller" },
    { 0xFF, 0xFF, "unassigned class" },
};

/* An exact class/subclass match first; subclass 0xFF entries catch the rest of a class. */
const char *pci_class_name(uint8_t class_code, uint8_t subclass)
{
    size_t count = sizeof(class_names) / sizeof(class_names[0]);

    for (size_t i = 0; i < count; i++)
        if (class_names[i].class_code == class_code && class_names[i].subclass == subclass)
            return class_names[i].name;
    for (size_t i = 0; i < count; i++)
        if (class_names[i].class_code == class_code && class_names[i].subclass == 0xFF)
            return class_names[i].name;
    return "unknown class";
}

const char *pci_capability_name(uint8_t id)
{
    switch (id) {
    case 0x01: return "power-management";
    case 0x03: return "vpd";
    case 0x04: return "slot-id";
    case 0x05: return "msi";
    case 0x09: return "vendor-specific";
    case 0x0C: return "hot-plug";
    case 0x0D: return "bridge-subsystem-id";
    case 0x10: return "pci-express";
    case 0x11: return "msi-x";
    case 0x12: return "sata";
    case 0x13: return "advanced-features";
    default:   return "unknown";
    }
}
