/* notify_fake.h - a fake systemd notify socket for tests: a datagram socket
 * the test binds and reads, named in $NOTIFY_SOCKET for the code under test. */
#ifndef NOTIFY_FAKE_H
#define NOTIFY_FAKE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct notify_fake {
    int fd;
    char path[108];
    char dir[64];
} notify_fake;

/* Create the socket in a fresh temporary directory and setenv NOTIFY_SOCKET. */
int notify_fake_open(notify_fake *nf);
/* Receive one datagram into buf (NUL-terminated); waits up to timeout_ms.
 * Returns its length, 0 on timeout, -1 on error. */
int notify_fake_recv(notify_fake *nf, char *buf, size_t cap, int timeout_ms);
/* Receive until a datagram containing `needle` arrives (or timeout); the
 * datagrams read on the way are appended to log (if not NULL), separated by
 * '|'. Returns true when found. */
bool notify_fake_wait_for(notify_fake *nf, const char *needle, int timeout_ms, char *log, size_t logcap);
void notify_fake_close(notify_fake *nf);

#endif
