/* notify_fake.c - see notify_fake.h. */
#include "notify_fake.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int notify_fake_open(notify_fake *nf)
{
    memset(nf, 0, sizeof *nf);
    snprintf(nf->dir, sizeof nf->dir, "/tmp/rl-notify-XXXXXX");
    if (!mkdtemp(nf->dir))
        return -1;
    snprintf(nf->path, sizeof nf->path, "%s/notify", nf->dir);
    nf->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (nf->fd < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", nf->path);
    if (bind(nf->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    setenv("NOTIFY_SOCKET", nf->path, 1);
    return 0;
}

int notify_fake_recv(notify_fake *nf, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = nf->fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return r;
    ssize_t n = recv(nf->fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool notify_fake_wait_for(notify_fake *nf, const char *needle, int timeout_ms, char *log, size_t logcap)
{
    long long end = now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        long long left = end - now_ms();
        if (left <= 0)
            return false;
        int n = notify_fake_recv(nf, buf, sizeof buf, (int)left);
        if (n <= 0)
            return false;
        if (log) {
            size_t l = strlen(log);
            snprintf(log + l, logcap - l, "%s%s", l ? "|" : "", buf);
        }
        if (strstr(buf, needle))
            return true;
    }
}

void notify_fake_close(notify_fake *nf)
{
    if (nf->fd > 0)
        close(nf->fd);
    unlink(nf->path);
    rmdir(nf->dir);
    unsetenv("NOTIFY_SOCKET");
}
