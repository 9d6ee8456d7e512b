/*
 * The Intel 82540EM ("e1000"), the network card QEMU emulates best.
 *
 * The card moves frames by DMA through two rings of descriptors in our memory. For receive we
 * give it empty buffers and it fills them, setting DD ("descriptor done") in each; for transmit
 * we fill buffers and it sends them, again reporting DD. Head and tail registers divide each
 * ring between the card (from head up to tail) and the driver (the rest). The kernel polls
 * the rings; the card's interrupt only wakes a halted CPU to do so.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "e1000.h"
#include "frames.h"
#include "interrupts.h"
#include "kprintf.h"
#include "net.h"
#include "panic.h"
#include "pci.h"
#include "string.h"

#define VENDOR_INTEL 0x8086
#define DEVICE_82540EM 0x100E

/* Register offsets in BAR0 (82540EM manual, section 13). */
enum {
    REG_CTRL = 0x0000, REG_STATUS = 0x0008, REG_EERD = 0x0014, REG_ICR = 0x00C0,
    REG_ITR = 0x00C4, REG_IMS = 0x00D0, REG_IMC = 0x00D8, REG_RCTL = 0x0100, REG_TCTL = 0x0400,
    REG_TIPG = 0x0410, REG_RDTR = 0x2820,
    REG_RDBAL = 0x2800, REG_RDBAH = 0x2804, REG_RDLEN = 0x2808, REG_RDH = 0x2810,
    REG_RDT = 0x2818, REG_TDBAL = 0x3800, REG_TDBAH = 0x3804, REG_TDLEN = 0x3808,
    REG_TDH = 0x3810, REG_TDT = 0x3818, REG_MTA = 0x5200, REG_RAL = 0x5400, REG_RAH = 0x5404,
    REG_CRCERRS = 0x4000, REG_MPC = 0x4010, REG_GPRC = 0x4074, REG_GPTC = 0x4080,
    REG_RNBC = 0x40A0,
};

#define CTRL_ASDE (1u << 5)
#define CTRL_SLU  (1u << 6)
#define CTRL_RST  (1u << 26)
#define STATUS_FD (1u << 0)
#define STATUS_LU (1u << 1)
#define EERD_START (1u << 0)
#define EERD_DONE  (1u << 4)
#define RCTL_EN    (1u << 1)
#define RCTL_BAM   (1u << 15)          /* accept broadcast */
#define RCTL_SECRC (1u << 26)          /* strip the CRC: the stack never sees it */
#define TCTL_EN    (1u << 1)
#define TCTL_PSP   (1u << 3)           /* pad short packets to 64 bytes */
#define TCTL_CT    (0x10u << 4)        /* collision threshold, as the manual advises */
#define TCTL_COLD  (0x40u << 12)       /* collision distance for full duplex */
#define TIPG_82540 0x0060200A          /* inter-packet gap: IPGT 10, IPGR1 8, IPGR2 6 */
#define RAH_VALID  (1u << 31)
/* Interrupt causes (ICR, IMS): link change, few free receive buffers, overrun, frame received. */
#define INT_LSC    (1u << 2)
#define INT_RXDMT0 (1u << 4)
#define INT_RXO    (1u << 6)
#define INT_RXT0   (1u << 7)

#define TX_CMD_EOP  (1u << 0)          /* end of packet */
#define TX_CMD_IFCS (1u << 1)          /* insert the Ethernet CRC */
#define TX_CMD_RS   (1u << 3)          /* report status: set DD when sent */
#define DESC_DD     (1u << 0)
#define RX_ERRORS   0x97               /* CE, SE, SEQ, CXE, RXE: the frame itself is bad */

#define RING_SIZE 128
#define BUFFER_SIZE 2048
#define MTA_ENTRIES 128

struct rx_descriptor {
    uint64_t buffer;
    uint16_t length;
    uint16_t checksum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
} __attribute__((packed));

struct tx_descriptor {
    uint64_t buffer;
    uint16_t length;
    uint8_t checksum_offset;
    uint8_t command;
    uint8_t status;
    uint8_t checksum_start;
    uint16_t special;
} __attribute__((packed));

struct hardware_counters {
    uint64_t crc_errors, missed, good_received, good_transmitted, no_buffers, rx_errors;
};

static volatile uint8_t *registers;
/* volatile: the card writes the descriptors behind the compiler's back. */
static volatile struct rx_descriptor *rx_ring;
static volatile struct tx_descriptor *tx_ring;
static uint8_t *rx_buffers, *tx_buffers;
static unsigned rx_next, tx_next;
static struct hardware_counters counters;
static struct nic nic;

static uint32_t read_register(uint32_t offset)
{
    return *(volatile uint32_t *)(registers + offset);
}

static void write_register(uint32_t offset, uint32_t value)
{
    *(volatile uint32_t *)(registers + offset) = value;
}

/* DMA memory: physical frames, which the identity map lets us use at the same address. */
static void *dma_alloc(size_t bytes)
{
    size_t frames = (bytes + FRAME_SIZE - 1) / FRAME_SIZE;
    uint64_t address = frame_alloc_contiguous(frames);

    if (!address)
        panic("e1000: out of memory for DMA rings");
    memset((void *)address, 0, frames * FRAME_SIZE);
    return (void *)address;
}

static void reset(void)
{
    write_register(REG_CTRL, read_register(REG_CTRL) | CTRL_RST);
    while (read_register(REG_CTRL) & CTRL_RST)
        ;
    write_register(REG_IMC, 0xFFFFFFFF);
    read_register(REG_ICR);
    write_register(REG_CTRL, read_register(REG_CTRL) | CTRL_SLU | CTRL_ASDE);
}

static uint16_t read_eeprom(uint8_t word)
{
    uint32_t value;

    write_register(REG_EERD, (uint32_t)word << 8 | EERD_START);
    while (!((value = read_register(REG_EERD)) & EERD_DONE))
        ;
    return value >> 16;
}

/* The MAC address lives in the EEPROM; the receive filter must be told it, too. */
static void read_mac_address(void)
{
    for (int i = 0; i < 3; i++) {
        uint16_t word = read_eeprom(i);
        nic.mac[2 * i] = word & 0xFF;
        nic.mac[2 * i + 1] = word >> 8;
    }
    write_register(REG_RAL, nic.mac[0] | nic.mac[1] << 8 | nic.mac[2] << 16 |
                            (uint32_t)nic.mac[3] << 24);
    write_register(REG_RAH, nic.mac[4] | nic.mac[5] << 8 | RAH_VALID);
    for (int i = 0; i < MTA_ENTRIES; i++)
        write_register(REG_MTA + 4 * i, 0);
}

static void init_receive(void)
{
    rx_ring = dma_alloc(RING_SIZE * sizeof(*rx_ring));
    rx_buffers = dma_alloc(RING_SIZE * BUFFER_SIZE);
    for (int i = 0; i < RING_SIZE; i++)
        rx_ring[i].buffer = (uint64_t)(rx_buffers + i * BUFFER_SIZE);
    write_register(REG_RDBAL, (uint32_t)(uint64_t)rx_ring);
    write_register(REG_RDBAH, (uint64_t)rx_ring >> 32);
    write_register(REG_RDLEN, RING_SIZE * sizeof(*rx_ring));
    write_register(REG_RDH, 0);
    /* Head == tail would mean "no buffers"; hand the card all but one. */
    write_register(REG_RDT, RING_SIZE - 1);
    write_register(REG_RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
}

static void init_transmit(void)
{
    tx_ring = dma_alloc(RING_SIZE * sizeof(*tx_ring));
    tx_buffers = dma_alloc(RING_SIZE * BUFFER_SIZE);
    for (int i = 0; i < RING_SIZE; i++) {
        tx_ring[i].buffer = (uint64_t)(tx_buffers + i * BUFFER_SIZE);
        /* Mark every slot as done, so the first use of each finds it free. */
        tx_ring[i].status = DESC_DD;
    }
    write_register(REG_TDBAL, (uint32_t)(uint64_t)tx_ring);
    write_register(REG_TDBAH, (uint64_t)tx_ring >> 32);
    write_register(REG_TDLEN, RING_SIZE * sizeof(*tx_ring));
    write_register(REG_TDH, 0);
    write_register(REG_TDT, 0);
    write_register(REG_TIPG, TIPG_82540);
    write_register(REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
}

static size_t receive(void *buffer, size_t size)
{
    for (;;) {
        volatile struct rx_descriptor *descriptor = &rx_ring[rx_next];
        size_t length;

        if (!(descriptor->status & DESC_DD))
            return 0;
        if (descriptor->errors & RX_ERRORS) {
            counters.rx_errors++;
            length = 0;
        } else {
            length = descriptor->length < size ? descriptor->length : size;
            memcpy(buffer, rx_buffers + rx_next * BUFFER_SIZE, length);
        }
        /* Give the buffer back: the card owns the slots from its head up to the tail. */
        descriptor->status = 0;
        write_register(REG_RDT, rx_next);
        rx_next = (rx_next + 1) % RING_SIZE;
        if (length)
            return length;
    }
}

static bool frame_waiting(void)
{
    return rx_ring[rx_next].status & DESC_DD;
}

/*
 * Waits while the ring is full: the card empties it at line rate, so this is brief. One slot
 * always stays empty: a tail that caught up with the head would read as an empty ring, and the
 * card would never send what is in it.
 */
static bool transmit(const void *frame, size_t length)
{
    volatile struct tx_descriptor *descriptor = &tx_ring[tx_next];

    if (length > BUFFER_SIZE)
        return false;
    while ((tx_next + 1) % RING_SIZE == read_register(REG_TDH) ||
           !(descriptor->status & DESC_DD))
        ;
    memcpy(tx_buffers + tx_next * BUFFER_SIZE, frame, length);
    descriptor->length = length;
    descriptor->command = TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS;
    descriptor->status = 0;
    tx_next = (tx_next + 1) % RING_SIZE;
    write_register(REG_TDT, tx_next);
    return true;
}

static void print_link(void)
{
    uint32_t status = read_register(REG_STATUS);
    static const int speeds[] = { 10, 100, 1000, 1000 };
    char mac[18];

    format_mac(mac, sizeof(mac), nic.mac);
    if (status & STATUS_LU)
        kprintf("e1000: %s link up, %d Mb/s %s duplex\n", mac, speeds[(status >> 6) & 3],
                status & STATUS_FD ? "full" : "half");
    else
        kprintf("e1000: %s link down\n", mac);
}

/*
 * Reading ICR returns the causes and clears them, which drops the card's interrupt line: all
 * the handler must do. The frames themselves wait in the ring for the main loop.
 */
static void acknowledge_interrupt(void)
{
    read_register(REG_ICR);
}

/*
 * IMS unmasks the causes we want (IMC, in reset, masked them all). RDTR and ITR could delay
 * and throttle the interrupt to batch frames; zero asks for neither, because the card only
 * interrupts an idle CPU here, and under load the main loop polls with interrupts off.
 */
static void enable_interrupts(const struct pci_device *device)
{
    if (device->interrupt_line >= 16) {
        kprintf("e1000: no interrupt line; the timer will wake the CPU to poll\n");
        return;
    }
    interrupt_register(device->interrupt_line, "e1000", acknowledge_interrupt);
    write_register(REG_RDTR, 0);
    write_register(REG_ITR, 0);
    write_register(REG_IMS, INT_RXT0 | INT_RXO | INT_RXDMT0 | INT_LSC);
}

static void probe(struct pci_device *device)
{
    struct pci_bar *bar = &device->bars[0];

    if (registers) {
        kprintf("e1000: only one card is supported; ignoring this one\n");
        return;
    }
    if (bar->kind != PCI_BAR_MEMORY32 && bar->kind != PCI_BAR_MEMORY64)
        panic("e1000: BAR0 is not memory-mapped");
    registers = (volatile uint8_t *)bar->address;
    nic.name = "e1000";
    nic.transmit = transmit;
    nic.receive = receive;
    nic.frame_waiting = frame_waiting;
    pci_enable_bus_mastering(device);
    reset();
    read_mac_address();
    init_receive();
    init_transmit();
    enable_interrupts(device);
    print_link();
    net_attach(&nic);
}

static const struct pci_driver driver = {
    .name = "e1000", .vendor_id = VENDOR_INTEL, .device_id = DEVICE_82540EM, .probe = probe,
};

void e1000_register(void)
{
    pci_register_driver(&driver);
}

/* The statistics registers clear when read, so keep running totals. */
void e1000_print_counters(void)
{
    if (!registers)
        return;
    counters.crc_errors += read_register(REG_CRCERRS);
    counters.missed += read_register(REG_MPC);
    counters.good_received += read_register(REG_GPRC);
    counters.good_transmitted += read_register(REG_GPTC);
    counters.no_buffers += read_register(REG_RNBC);
    kprintf("e1000: good_received=%lu good_transmitted=%lu missed=%lu no_buffers=%lu "
            "crc_errors=%lu rx_errors=%lu\n", counters.good_received, counters.good_transmitted,
            counters.missed, counters.no_buffers, counters.crc_errors, counters.rx_errors);
}
