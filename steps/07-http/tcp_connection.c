/*
 * The end of a connection's life, which input, output and the timers can each bring about:
 * its slot is freed, or, while the application still holds it, kept as CLOSED so that the
 * application's next call learns what happened.
 */
#include <stdbool.h>
#include "ring.h"
#include "tcp_connection.h"

void tcp_release(struct tcp_connection *connection)
{
    ring_free(&connection->send_buffer);
    ring_free(&connection->receive_buffer);
    *connection = (struct tcp_connection){.state = TCP_FREE};
}

/* Reset, timed out, or both FINs done: free the slot unless the application still holds it. */
void tcp_connection_over(struct tcp_connection *connection)
{
    if (!connection->held_by_application) {
        tcp_release(connection);
        return;
    }
    connection->state = TCP_CLOSED;
    connection->retransmit_at = connection->persist_at = connection->linger_until = 0;
}
