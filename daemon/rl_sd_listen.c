/* rl_sd_listen.c - the listening socket: systemd's (socket activation) or our own. */
#include "rl_sd.h"
#include "rl_err.h"
#include "rl_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>


static int create_socket(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof sa.sun_path)
        return rl_fail(err, errlen, -ENAMETOOLONG, "socket path '%s' is empty or too long", path);
    memcpy(sa.sun_path, path, len + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return rl_fail(err, errlen, -errno, "socket(): %s", strerror(errno));

    /* Replace a stale socket file, but never another kind of file, and never a
     * socket some live daemon still listens on. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(fd);
            return rl_fail(err, errlen, -EEXIST, "%s exists and is not a socket", path);
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(probe);
            if (live) {
                close(fd);
                return rl_fail(err, errlen, -EADDRINUSE, "%s: another daemon is listening there", path);
            }
        }
        unlink(path);
    }
    /* The socket is created with mode 0660 (clients in the daemon's group). */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        return rl_fail(err, errlen, -e, "bind(%s): %s", path, strerror(e));
    }
    if (listen(fd, SOMAXCONN) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        return rl_fail(err, errlen, -e, "listen(%s): %s", path, strerror(e));
    }
    return fd;
}

int rl_sd_listen_activated(char *err, size_t errlen)
{
    /* unset_environment=1: children we might spawn must not inherit them. */
    int n = sd_listen_fds(1);
    if (n < 0)
        return rl_fail(err, errlen, n, "sd_listen_fds: %s", strerror(-n));
    if (n == 0)
        return rl_fail(err, errlen, -ENODATA, "not socket-activated");
    if (n != 1) {
        for (int i = 0; i < n; i++)
            close(SD_LISTEN_FDS_START + i);
        return rl_fail(err, errlen, -EINVAL,
                    "socket activation passed %d file descriptors; expected exactly one "
                    "listening AF_UNIX stream socket (check ringlmd.socket)", n);
    }
    int fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
        close(fd);
        return rl_fail(err, errlen, -EINVAL,
                    "socket activation passed fd %d which is not a listening AF_UNIX "
                    "stream socket (ringlmd.socket needs ListenStream=/path)", fd);
    }
    return fd;
}

int rl_sd_listen(const char *path, bool *activated, char *err, size_t errlen)
{
    *activated = false;
    int fd = rl_sd_listen_activated(err, errlen);
    if (fd == -ENODATA)
        return create_socket(path, err, errlen);
    if (fd < 0)
        return fd;
    struct sockaddr_un sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sl > sizeof(sa_family_t) &&
        sa.sun_path[0] && strncmp(sa.sun_path, path, sizeof sa.sun_path) != 0)
        rl_log(LOG_NOTICE, "socket activated on %.*s (configured socket %s is ignored)",
               (int)sizeof sa.sun_path, sa.sun_path, path);
    *activated = true;
    return fd;
}
