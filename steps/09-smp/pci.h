#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCI_MAX_DEVICES 64
#define PCI_BAR_COUNT 6
#define PCI_MAX_CAPABILITIES 8

enum pci_bar_kind { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEMORY32, PCI_BAR_MEMORY64 };

struct pci_bar {
    enum pci_bar_kind kind;
    bool prefetchable;
    uint64_t address;
    uint64_t size;
};

struct pci_device {
    uint8_t bus, slot, function;
    uint16_t vendor_id, device_id;
    uint8_t class_code, subclass, prog_if, revision;
    uint8_t header_type;
    uint8_t interrupt_line;
    struct pci_bar bars[PCI_BAR_COUNT];
    uint8_t capabilities[PCI_MAX_CAPABILITIES];
    size_t capability_count;
};

/* A driver claims devices by vendor and device ID; probe is called once per match. */
struct pci_driver {
    const char *name;
    uint16_t vendor_id, device_id;
    void (*probe)(struct pci_device *device);
};

uint32_t pci_config_read32(const struct pci_device *device, uint8_t offset);
uint16_t pci_config_read16(const struct pci_device *device, uint8_t offset);
void pci_config_write16(const struct pci_device *device, uint8_t offset, uint16_t value);
void pci_enable_bus_mastering(const struct pci_device *device);

void pci_init(void);
void pci_print_devices(void);
void pci_register_driver(const struct pci_driver *driver);
void pci_probe_drivers(void);

const char *pci_class_name(uint8_t class_code, uint8_t subclass);
const char *pci_capability_name(uint8_t id);
