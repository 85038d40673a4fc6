// The floor for Benchmarks/parked-bench: what answering N parked requests costs the kernel on
// this machine when the server does nothing else. Accepts N connections on 127.0.0.1:PORT,
// reads each one's request, prints "ready", waits for a line on stdin, then writes the bytes
// of ANSWER (a real answer of the server, saved by parked-client) to every connection with
// one writev each, as fast as it can, and exits once stdin closes. With ROUNDS above 1 it then
// reads each connection's next request, prints "ready" again and answers again on the next
// line: the floor of a connection's later polls.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: parked-floor PORT N ANSWER [ROUNDS]\n"); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[2]), rounds = argc == 5 ? atoi(argv[4]) : 1;
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 1; }
    static char answer[1 << 20];
    size_t len = fread(answer, 1, sizeof answer, f);
    fclose(f);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 4096) != 0) { perror("listen"); return 1; }
    printf("listening\n");
    fflush(stdout);
    int *fds = calloc(n, sizeof(int));
    char buf[4096];
    for (int i = 0; i < n; i++) {
        fds[i] = accept(ls, NULL, NULL);
        if (fds[i] < 0) { perror("accept"); return 1; }
        if (read(fds[i], buf, sizeof buf) <= 0) { perror("read"); return 1; }
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as the server does
    }
    for (int round = 0; round < rounds; round++) {
        if (round > 0) {
            for (int i = 0; i < n; i++) {
                if (read(fds[i], buf, sizeof buf) <= 0) { perror("read"); return 1; }
            }
        }
        printf("ready\n");
        fflush(stdout);
        if (!fgets(buf, sizeof buf, stdin)) return 1;
        for (int i = 0; i < n; i++) {
            struct iovec v = {answer, len};
            if (writev(fds[i], &v, 1) != (ssize_t)len) { perror("writev"); return 1; }
        }
    }
    while (fgets(buf, sizeof buf, stdin)) {}
    return 0;
}
