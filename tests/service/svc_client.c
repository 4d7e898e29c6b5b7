/* svc_client.c - a minimal libringlm client for the systemd test:
 *   svc_client SOCKET PROMPT [--no-wait]
 * prints the generated text and exits 0 when the request is DONE; with
 * --no-wait it exits right after submitting. */
#include <stdio.h>
#include <string.h>

#include "ringlm.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: svc_client SOCKET PROMPT [--no-wait]\n");
        return 2;
    }
    ringlm_conn *c;
    int rc = ringlm_connect(argv[1], NULL, &c);
    if (rc < 0) {
        fprintf(stderr, "connect: %s (%s)\n", ringlm_strerror(rc), ringlm_last_error());
        return 1;
    }
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 64;
    ringlm_req req;
    rc = ringlm_submit_text(c, argv[2], strlen(argv[2]), &p, &req);
    if (rc < 0) {
        fprintf(stderr, "submit: %s\n", ringlm_strerror(rc));
        return 1;
    }
    if (argc > 3 && strcmp(argv[3], "--no-wait") == 0) {
        ringlm_event ev;
        if (ringlm_next(c, req, &ev, 200) == 0) /* let the daemon take it */
            ringlm_release(c, &ev);
        ringlm_close(c);
        return 0;
    }
    for (;;) {
        ringlm_event ev;
        rc = ringlm_next(c, req, &ev, 10000);
        if (rc < 0) {
            fprintf(stderr, "next: %s\n", ringlm_strerror(rc));
            return 1;
        }
        int type = ev.type;
        if (type == RINGLM_EV_TOKENS)
            fwrite(ev.text, 1, ev.text_len, stdout);
        else if (type == RINGLM_EV_ERROR)
            fprintf(stderr, "error %d: %.*s\n", ev.status, (int)ev.text_len, ev.text);
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE) {
            printf("\n");
            ringlm_close(c);
            return 0;
        }
        if (type == RINGLM_EV_ERROR)
            return 1;
    }
}
