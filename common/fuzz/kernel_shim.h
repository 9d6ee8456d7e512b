/*
 * The kernel's heap on a Linux host, for testing kernel code there. It behaves as the kernel's
 * does where that matters (kmalloc(0) is NULL), counts live blocks so tests can see leaks, and
 * can be told to fail an allocation so tests can walk every out-of-memory path.
 */
#pragma once

extern long shim_live_blocks;   /* kmalloc'd and not yet kfree'd */
extern long shim_allocations;   /* successful allocations so far */
extern long shim_fail_after;    /* this many more succeed, then every one fails; -1: none fails */
