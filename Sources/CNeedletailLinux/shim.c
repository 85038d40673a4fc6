#define _GNU_SOURCE
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sched.h>
#include <spawn.h>
#include <limits.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include "CNeedletailLinux.h"

long nt_send_with_fd(int sock, const void *bytes, size_t len, int fd, int flags) {
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &msg, flags);
}

long nt_receive_with_fd(int sock, void *bytes, size_t len, int *fd, int flags) {
    struct iovec iov = { .iov_base = bytes, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    *fd = -1;
    long n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            memcpy(fd, CMSG_DATA(c), sizeof(int));
        }
    }
    return n;
}

int nt_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int nt_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

int nt_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int nt_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int nt_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int nt_futex_wait(uint32_t *word, uint32_t expected) {
    return (int)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

int nt_futex_wake_all(uint32_t *word) {
    return (int)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int nt_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, 15);
    short_name[15] = 0;
    return pthread_setname_np(pthread_self(), short_name);
}

int nt_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL);
}
