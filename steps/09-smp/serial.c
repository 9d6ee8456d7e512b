/*
 * COM1, a 16550 UART at I/O port 0x3F8. QEMU connects it to the host (a terminal for
 * `make run`, a pipe for the grader), which makes it the kernel's most dependable way out:
 * it needs no memory mapping, no interrupts and no driver state beyond "is the transmitter
 * ready". Receiving is polled, too, but a received byte also interrupts, on line 4, so that
 * a halted CPU wakes up for the shell.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "interrupts.h"
#include "serial.h"
#include "x86.h"

#define COM1 0x3F8
#define COM1_LINE 4

/* Register offsets from the base port. */
enum {
    UART_DATA = 0,          /* transmit/receive; divisor low byte while DLAB=1 */
    UART_INTERRUPTS = 1,    /* interrupt enable; divisor high byte while DLAB=1 */
    UART_FIFO = 2,
    UART_LINE_CONTROL = 3,
    UART_MODEM_CONTROL = 4,
    UART_LINE_STATUS = 5,
};

#define LINE_8N1          0x03
#define LINE_DLAB         0x80
#define FIFO_ENABLE_CLEAR 0x07
#define MODEM_DTR_RTS_OUT2 0x0B
#define MODEM_LOOPBACK    0x1E
#define INTERRUPT_ON_RECEIVE 0x01
#define STATUS_DATA_READY 0x01
#define STATUS_TX_EMPTY   0x20
#define UART_CLOCK        115200
#define BAUD              115200

static bool present;

/*
 * In loopback mode the UART receives what it sends; a missing UART reads back 0xFF. Real
 * hardware takes a moment to "receive" the byte, so wait (boundedly) for it to arrive.
 */
static bool loopback_works(void)
{
    outb(COM1 + UART_MODEM_CONTROL, MODEM_LOOPBACK);
    outb(COM1 + UART_DATA, 0xAE);
    for (int tries = 0; tries < 100000; tries++)
        if (inb(COM1 + UART_LINE_STATUS) & STATUS_DATA_READY)
            return inb(COM1 + UART_DATA) == 0xAE;
    return false;
}

bool serial_init(void)
{
    uint16_t divisor = UART_CLOCK / BAUD;

    outb(COM1 + UART_INTERRUPTS, 0);
    outb(COM1 + UART_LINE_CONTROL, LINE_DLAB);
    outb(COM1 + UART_DATA, divisor & 0xFF);
    outb(COM1 + UART_INTERRUPTS, divisor >> 8);
    outb(COM1 + UART_LINE_CONTROL, LINE_8N1);
    outb(COM1 + UART_FIFO, FIFO_ENABLE_CLEAR);
    present = loopback_works();
    outb(COM1 + UART_MODEM_CONTROL, MODEM_DTR_RTS_OUT2);
    return present;
}

static void transmit(char c)
{
    while (!(inb(COM1 + UART_LINE_STATUS) & STATUS_TX_EMPTY))
        ;
    outb(COM1 + UART_DATA, (uint8_t)c);
}

/* Terminals want CR LF; the kernel writes plain LF everywhere else. */
void serial_putc(char c)
{
    if (!present)
        return;
    if (c == '\n')
        transmit('\r');
    transmit(c);
}

bool serial_has_input(void)
{
    return present && (inb(COM1 + UART_LINE_STATUS) & STATUS_DATA_READY);
}

/* Non-blocking: a received byte, or -1 when none is waiting. */
int serial_getc(void)
{
    if (!serial_has_input())
        return -1;
    return inb(COM1 + UART_DATA);
}

/*
 * The UART keeps its line up until the byte is read, and the main loop reads it: the handler
 * has nothing to do. (OUT2, set in serial_init, is what connects the UART to the PIC.)
 */
void serial_enable_receive_interrupt(void)
{
    if (!present)
        return;
    interrupt_register(COM1_LINE, "serial", NULL);
    outb(COM1 + UART_INTERRUPTS, INTERRUPT_ON_RECEIVE);
}
