// Opens N connections to 127.0.0.1:PORT, sends a GET on each (a long-poll), prints
// "parked" when all are sent, waits for a line on stdin, then reads until every connection has
// received a complete chunked answer (ending "0\r\n\r\n") and prints the milliseconds taken
// until the last answer and until the first byte of any answer arrived (connections are
// closed when the process exits, after the measurement). With a fourth argument, the bytes the
// first connection received are saved there (parked-floor sends them; "-" saves nothing).
// With a fifth, NEXT (a request, or @FILE as REQUEST is), the connections are kept: once every
// answer has arrived, each connection sends its NEXT request, "parked" is printed again, and a
// second line on stdin starts a second measurement, printed like the first: a connection's
// later poll, on a connection that has already carried one answer (a browser's steady state).
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

// A request argument: the request itself, or @FILE: requests separated by NUL bytes, used in
// turn (one per viewer when the polls come from distinct sessions). Returns how many.
static int requests(const char *arg, char ***reqs) {
    *reqs = NULL;
    if (arg[0] != '@') {
        *reqs = malloc(sizeof **reqs);
        (*reqs)[0] = strdup(arg);
        return 1;
    }
    FILE *f = fopen(arg + 1, "rb");
    if (!f) { perror(arg + 1); exit(1); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *all = malloc(size + 1);
    size_t len = fread(all, 1, size, f);
    fclose(f);
    all[len] = 0;
    int n = 0;
    for (size_t i = 0; i < len; i += strlen(all + i) + 1) {
        *reqs = realloc(*reqs, (n + 1) * sizeof **reqs);
        (*reqs)[n++] = all + i;
    }
    return n;
}

static void send_request(int fd, const char *req) {
    size_t len = strlen(req);
    if (write(fd, req, len) != (ssize_t)len) { perror("write"); exit(1); }
}

// Waits for a line on stdin, then reads until every connection has received a complete
// chunked answer; prints the milliseconds to the last answer and to the first byte.
static int measure(int ep, int *fds, int n, char (*tail)[5], char *ended, FILE *save) {
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    double t0 = now_ms(), first = -1;
    int done = 0;
    static char buf[65536];
    struct epoll_event evs[256];
    while (done < n) {
        int k = epoll_wait(ep, evs, 256, 10000);
        if (k <= 0) { fprintf(stderr, "timeout: %d of %d answered\n", done, n); return 1; }
        for (int j = 0; j < k; j++) {
            int i = evs[j].data.u32;
            if (ended[i]) continue;
            // One read per event: the epoll is level-triggered, so more data reports again.
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r == 0) { fprintf(stderr, "connection %d closed before its answer ended\n", i); return 1; }
            if (r < 0) continue;
            if (first < 0) first = now_ms();
            if (i == 0 && save) fwrite(buf, 1, r, save);
            if (r >= 5) memcpy(tail[i], buf + r - 5, 5);
            else { memmove(tail[i], tail[i] + r, 5 - r); memcpy(tail[i] + 5 - r, buf, r); }
            if (memcmp(tail[i], "0\r\n\r\n", 5) == 0) {
                // Kept open (closed when the process exits): a close now would send the
                // server a FIN to handle while it is still answering the others.
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                ended[i] = 1;
                done++;
            }
        }
    }
    printf("%.1f %.1f\n", now_ms() - t0, first - t0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) { fprintf(stderr, "usage: parked-client PORT N REQUEST [SAVE|- [NEXT]]\n"); return 2; }
    FILE *save = argc >= 5 && strcmp(argv[4], "-") != 0 ? fopen(argv[4], "wb") : NULL;
    int port = atoi(argv[1]), n = atoi(argv[2]);
    char **reqs;
    int nreqs = requests(argv[3], &reqs);
    if (nreqs == 0) { fprintf(stderr, "no requests\n"); return 2; }
    int *fds = calloc(n, sizeof(int));
    char (*tail)[5] = calloc(n, 5);
    char *ended = calloc(n, 1);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        send_request(fd, reqs[i % nreqs]);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[i] = fd;
    }
    printf("parked\n");
    fflush(stdout);
    if (measure(ep, fds, n, tail, ended, save)) return 1;
    if (save) fclose(save);
    if (argc == 6) {
        char **next;
        int nnext = requests(argv[5], &next);
        if (nnext == 0) { fprintf(stderr, "no next requests\n"); return 2; }
        for (int i = 0; i < n; i++) {
            send_request(fds[i], next[i % nnext]);
            memset(tail[i], 0, 5);
            ended[i] = 0;
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        }
        printf("parked\n");
        fflush(stdout);
        if (measure(ep, fds, n, tail, ended, NULL)) return 1;
    }
    return 0;
}
