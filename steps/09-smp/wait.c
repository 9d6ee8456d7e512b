/*
 * Spin, then halt. During inference the next change to a word comes within microseconds, so a
 * wait spins first. Then it halts: a halted virtual CPU gives its host core to the CPUs that
 * have work, which matters whenever there are more virtual CPUs than host cores. The CPU that
 * ends a wait wakes the halted ones with an IPI. Interrupts are enabled only inside that HLT;
 * besides the IPI, the CPU's timer may end it, and the wait simply looks at the word again.
 */
#include <stdatomic.h>
#include <stdint.h>
#include "apic.h"
#include "percpu.h"
#include "wait.h"
#include "x86.h"

static atomic_int halted_count;        /* CPUs in (or about to enter) HLT in a wait */
static uint64_t spin_before_halt_tsc;

void wait_init(uint64_t spin_tsc)
{
    spin_before_halt_tsc = spin_tsc;
}

/*
 * Counting ourselves as halted before the last look at the word pairs with wake_waiters,
 * called after a change to it: either we see the change, or the waker sees us and sends the
 * IPI. (Both sides use locked instructions, which x86 never reorders with later loads.) An IPI
 * that arrives between the look and the HLT stays pending and ends the HLT at once (x86.h).
 */
static void halt_once(atomic_uint *word, unsigned value)
{
    atomic_fetch_add(&halted_count, 1);
    if (atomic_load(word) == value)
        this_cpu()->halted_tsc += halt_until_interrupt();
    atomic_fetch_sub(&halted_count, 1);
}

static unsigned wait_spinning_for(atomic_uint *word, unsigned value, uint64_t spin_tsc)
{
    uint64_t spin_until = rdtsc() + spin_tsc;
    unsigned now;

    while ((now = atomic_load_explicit(word, memory_order_acquire)) == value) {
        if (rdtsc() < spin_until)
            cpu_relax();
        else
            halt_once(word, value);
    }
    return now;
}

unsigned wait_while(atomic_uint *word, unsigned value)
{
    return wait_spinning_for(word, value, spin_before_halt_tsc);
}

unsigned halt_while(atomic_uint *word, unsigned value)
{
    return wait_spinning_for(word, value, 0);
}

void wake_waiters(void)
{
    if (atomic_load(&halted_count) > 0)
        apic_send_wakeup_to_others();
}
