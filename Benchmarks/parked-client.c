// Opens N connections to 127.0.0.1:PORT, sends a GET on each (a long-poll), prints
// "parked" when all are sent, waits for a line on stdin, then reads until every connection has
// received a complete chunked answer (ending "0\r\n\r\n") and prints the milliseconds taken
// until the last answer and until the first byte of any answer arrived (connections are
// closed when the process exits, after the measurement). With a fourth argument, the bytes the
// first connection received are saved there (parked-floor sends them).
// Built and driven by Benchmarks/parked-bench.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: parked-client PORT N REQUEST [SAVE]\n"); return 2; }
    FILE *save = argc == 5 ? fopen(argv[4], "wb") : NULL;
    int port = atoi(argv[1]), n = atoi(argv[2]);
    // REQUEST is the request itself, or @FILE: requests separated by NUL bytes, used in turn
    // (one per viewer when the polls come from distinct sessions).
    char **reqs = NULL;
    int nreqs = 0;
    if (argv[3][0] == '@') {
        FILE *f = fopen(argv[3] + 1, "rb");
        if (!f) { perror(argv[3] + 1); return 1; }
        static char all[64 << 20];
        size_t len = fread(all, 1, sizeof all - 1, f);
        fclose(f);
        all[len] = 0;
        for (size_t i = 0; i < len; i += strlen(all + i) + 1) {
            reqs = realloc(reqs, (nreqs + 1) * sizeof *reqs);
            reqs[nreqs++] = all + i;
        }
    } else {
        reqs = &argv[3];
        nreqs = 1;
    }
    if (nreqs == 0) { fprintf(stderr, "no requests\n"); return 2; }
    int *fds = calloc(n, sizeof(int));
    char (*tail)[5] = calloc(n, 5);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        const char *req = reqs[i % nreqs];
        size_t reqlen = strlen(req);
        if (write(fd, req, reqlen) != (ssize_t)reqlen) { perror("write"); return 1; }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[i] = fd;
    }
    printf("parked\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    double t0 = now_ms(), first = -1;
    int done = 0;
    char buf[65536];
    struct epoll_event evs[256];
    while (done < n) {
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k <= 0) { fprintf(stderr, "timeout: %d of %d answered\n", done, n); return 1; }
        for (int j = 0; j < k; j++) {
            int i = evs[j].data.u32;
            if (fds[i] < 0) continue;
            // One read per event: the epoll is level-triggered, so more data reports again.
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r == 0) { fprintf(stderr, "connection %d closed before its answer ended\n", i); return 1; }
            if (r < 0) continue;
            if (first < 0) first = now_ms();
            if (i == 0 && save) fwrite(buf, 1, r, save);
            if (r >= 5) memcpy(tail[i], buf + r - 5, 5);
            else { memmove(tail[i], tail[i] + r, 5 - r); memcpy(tail[i] + 5 - r, buf, r); }
            if (memcmp(tail[i], "0\r\n\r\n", 5) == 0) {
                // Closed only after the measurement: a close now would send the server a FIN
                // to handle while it is still answering the others.
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                fds[i] = -1;
                done++;
            }
        }
    }
    printf("%.1f %.1f\n", now_ms() - t0, first - t0);
    if (save) fclose(save);
    return 0;
}
